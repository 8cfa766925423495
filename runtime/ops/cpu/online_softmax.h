// Flash-decoding's online softmax, shared by the CPU decoding kernels (attention.cc's one-query path,
// factored_decode_attention.cc, latent_decode_attention.cc). The cached keys are split into ranges,
// one task each; a task walks its range a chunk at a time keeping, per query row, the running maximum
// m of its scores, the sum l of exp(score - m) and the output o = sum exp(score - m) v; the ranges'
// states are merged at the end.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "runtime/ops/cpu/simd_vec.h"

namespace lrkv::cpu {

// Cached positions per task at least. The decoder calls a kernel per sequence, so a sequence of 512
// positions must split too: with 1024 (MHA's kernel) or 512 (the others), one of this machine's two
// cores sat idle in each such call. At batch 16, 512 and 2048 (bound/time, three alternating runs):
// MHA 0.65 to 0.69 against 0.60 to 0.66, and 0.71 to 0.78 against 0.69 to 0.72; LRKV at 512 0.40 to
// 0.49 against 0.25 to 0.41; MLA at 2048 0.51 to 0.58 against 0.41 to 0.53.
constexpr int64_t kDecodeMinRange = 128;

// How many ranges to split `keys` cached keys into when `units` (sequence, KV head) pairs run in
// parallel: enough for two tasks per thread, none shorter than kDecodeMinRange.
inline int64_t DecodeSplits(int64_t units, int64_t keys) {
  const int64_t want = (2 * omp_get_max_threads() + units - 1) / units;
  return std::max<int64_t>(1, std::min(want, keys / kDecodeMinRange));
}

// Asks for n values from p into the cache, the next chunk's while this one computes: with the
// hardware's prefetcher alone a task stalled on each chunk's first rows (attention.cc says when).
template <typename T>
void Prefetch(const T* p, int64_t n) {
  const char* bytes = reinterpret_cast<const char*>(p);
  for (int64_t at = 0; at < n * int64_t(sizeof(T)); at += 64) __builtin_prefetch(bytes + at);
}

// `rows` query rows' empty states: m = -inf, l = 0, o (rows, width) = 0.
template <typename T>
void StartRows(T* m, T* l, T* o, int64_t rows, int64_t width) {
  std::fill_n(m, rows, -std::numeric_limits<T>::infinity());
  std::fill_n(l, rows, T(0));
  std::fill_n(o, rows * width, T(0));
}

// A row's state moved to its new maximum m_new: l and o rescaled to it, l gaining a chunk's sum.
template <typename T>
void MoveToMaximum(T m_new, T chunk_sum, T& m, T& l, T* o, int64_t width) {
  if (m_new == m) {  // most chunks after the first few: nothing to rescale
    l += chunk_sum;
    return;
  }
  const T rescale = std::exp(m - m_new);
  l = l * rescale + chunk_sum, m = m_new;
  for (int64_t e = 0; e < width; ++e) o[e] *= rescale;
}

// One row's scores p over a new chunk of `keys`: the row's maximum grows to cover them, p becomes
// exp(p - m), l and o are rescaled to the new maximum and l gains the chunk's sum. The caller then
// adds p V_chunk to o. The exponentials a vector at a time (simd_vec.h's ExpVec: glibc's expf,
// called per score, was a fifth of MQA's decoding attention at batch 16).
template <typename T>
void AddChunk(T* p, int64_t keys, T& m, T& l, T* o, int64_t width) {
  SimdVec<T> top = SimdVec<T>{} + m;  // the chunk's maximum a vector at a time, then across lanes
  int64_t j = 0;
  for (; j + kSimdLanes<T> <= keys; j += kSimdLanes<T>) {
    const SimdVec<T> x = LoadVec(p + j);
    top = x > top ? x : top;  // a NaN score never replaces the maximum
  }
  T m_new = m;
  for (int64_t i = 0; i < kSimdLanes<T>; ++i) m_new = std::max(m_new, top[i]);
  for (; j < keys; ++j) m_new = std::max(m_new, p[j]);
  SimdVec<T> sum_v{};
  j = 0;
  for (; j + kSimdLanes<T> <= keys; j += kSimdLanes<T>) {
    const SimdVec<T> e = ExpVec<T>(LoadVec(p + j) - m_new);
    StoreVec(p + j, e);
    sum_v += e;
  }
  T sum = SumVec<T>(sum_v);
  for (; j < keys; ++j) sum += (p[j] = std::exp(p[j] - m_new));
  MoveToMaximum(m_new, sum, m, l, o, width);
}

// AddChunk for `rows` query rows at once whose scores are stored by column: p (keys, ld), row i's
// in column i, ld a whole number of vectors (columns past `rows` are computed and ignored). The
// maxima, exponentials and sums go a vector of rows at a time down the keys: the tile of scores a
// product wrote this way needs no transposing (attention.cc's MQA path).
template <typename T>
void AddChunkByColumns(T* p, int64_t keys, int64_t ld, int64_t rows, T* m, T* l, T* o, int64_t width) {
  constexpr int64_t kLanes = kSimdLanes<T>;
  for (int64_t c = 0; c < rows; c += kLanes) {
    SimdVec<T> top = LoadVec(p + c);  // per column, the chunk's maximum, then the row's new one
    for (int64_t j = 1; j < keys; ++j) {
      const SimdVec<T> x = LoadVec(p + j * ld + c);
      top = top > x ? top : x;
    }
    const int64_t lanes = std::min(kLanes, rows - c);
    for (int64_t i = 0; i < lanes; ++i) top[i] = std::max(top[i], m[c + i]);
    SimdVec<T> sum{};
    for (int64_t j = 0; j < keys; ++j) {
      const SimdVec<T> e = ExpVec<T>(LoadVec(p + j * ld + c) - top);
      StoreVec(p + j * ld + c, e);
      sum += e;
    }
    for (int64_t i = 0; i < lanes; ++i) MoveToMaximum(top[i], sum[i], m[c + i], l[c + i], o + (c + i) * width, width);
  }
}

// One row's states from `splits` ranges, range sp at m[sp * stride], l[sp * stride] and
// o[sp * stride * width]: out (width) = the softmax-weighted mean of the values; returns the row's
// log-sum-exp.
template <typename T>
T MergeRanges(const T* m, const T* l, const T* o, int64_t splits, int64_t stride, int64_t width, T* out) {
  T top = -std::numeric_limits<T>::infinity(), sum = 0;
  for (int64_t sp = 0; sp < splits; ++sp) top = std::max(top, m[sp * stride]);
  std::fill_n(out, width, T(0));
  for (int64_t sp = 0; sp < splits; ++sp) {
    const T w = std::exp(m[sp * stride] - top);
    sum += l[sp * stride] * w;
    for (int64_t j = 0; j < width; ++j) out[j] += o[sp * stride * width + j] * w;
  }
  for (int64_t j = 0; j < width; ++j) out[j] /= sum;
  return top + std::log(sum);
}

}  // namespace lrkv::cpu
