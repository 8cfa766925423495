// 64 bytes of float or double as one GCC vector: one AVX-512 register (GCC lowers it to narrower
// ones on machines without). For the few CPU kernels whose inner loops GCC 12 does not vectorize
// well on its own (its `omp simd` reductions kept their sums on the stack), written with these.
#pragma once

#include <cstdint>
#include <cstring>

namespace lrkv::cpu {

typedef float FloatVec64 __attribute__((vector_size(64)));
typedef double DoubleVec64 __attribute__((vector_size(64)));
template <typename T> struct Vec64Of;
template <> struct Vec64Of<float> { using type = FloatVec64; };
template <> struct Vec64Of<double> { using type = DoubleVec64; };
template <typename T> using Vec64 = typename Vec64Of<T>::type;
template <typename T> constexpr int64_t kLanes64 = sizeof(Vec64<T>) / sizeof(T);

// Unaligned load and store, one vector each.
template <typename T>
inline Vec64<T> Load64(const T* p) {
  Vec64<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void Store64(T* p, const Vec64<T>& v) {
  std::memcpy(p, &v, sizeof(v));
}

// The sum of a vector's lanes.
template <typename T>
inline T Sum64(const Vec64<T>& v) {
  T sum = 0;
  for (int64_t i = 0; i < kLanes64<T>; ++i) sum += v[i];
  return sum;
}

}  // namespace lrkv::cpu
