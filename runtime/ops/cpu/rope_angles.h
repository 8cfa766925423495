// RoPE's angles on the CPU, kept between calls: cos and sin of p * theta^(-2i / rope_dims) for
// positions p < positions and i < rope_dims / 2. Shared by the RoPE kernel (rope.cc) and the
// decoding kernel that rotates LRKV's rebuilt keys as it scores them (factored_decode_attention.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace lrkv::cpu {

template <typename T>
struct RopeTable {
  int64_t positions = 0;
  std::vector<T> cos, sin;  // (positions, rope_dims / 2)
};

// A table covering positions [0, end_position) at least (float and double; thread-safe).
template <typename T>
std::shared_ptr<const RopeTable<T>> RopeAngles(double theta, int64_t rope_dims, int64_t end_position);

}  // namespace lrkv::cpu
