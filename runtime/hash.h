// Small, stable integer hashes. Data sampling and model initialisation derive every random choice
// from (seed, index) through these, so results depend only on the seed and never on how the work
// is split across threads, ranks or resumptions. Do not change them: that changes every run.
#pragma once

#include <cstdint>

namespace lrkv {

// SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijection on 64-bit values with good avalanche.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Hash of the pair (a, b). For a fixed `a` it is a bijection in `b`, so distinct indices under one
// seed never collide.
inline uint64_t HashCombine(uint64_t a, uint64_t b) { return SplitMix64(SplitMix64(a) ^ b); }

}  // namespace lrkv
