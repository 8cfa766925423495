// The widest vector register the build's target has, as a GCC vector of float or double: 64 bytes
// with AVX-512, 32 with AVX, else 16. For the few CPU kernels whose inner loops GCC 12 does not
// vectorize well on its own (its `omp simd` reductions kept their sums on the stack), written with
// these. The width must be the register's: GCC lowers a wider vector to narrower registers, but
// not well. 64-byte vectors on an AVX2 machine (Zen 3) ran the register-tile product of
// register_tile_gemm.h at 2 GFLOP/s, 32-byte ones at 93.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace lrkv::cpu {

#if defined(__AVX512F__)
constexpr int kSimdBytes = 64;
#elif defined(__AVX__)
constexpr int kSimdBytes = 32;
#else
constexpr int kSimdBytes = 16;
#endif

typedef float FloatVec __attribute__((vector_size(kSimdBytes)));
typedef double DoubleVec __attribute__((vector_size(kSimdBytes)));
template <typename T> struct SimdVecOf;
template <> struct SimdVecOf<float> { using type = FloatVec; };
template <> struct SimdVecOf<double> { using type = DoubleVec; };
template <typename T> using SimdVec = typename SimdVecOf<T>::type;
template <typename T> constexpr int64_t kSimdLanes = sizeof(SimdVec<T>) / sizeof(T);

// n rounded up to whole vectors of T: the width of a tile whose columns are padded to lanes.
template <typename T>
constexpr int64_t RoundUpToVectors(int64_t n) {
  return (n + kSimdLanes<T> - 1) / kSimdLanes<T> * kSimdLanes<T>;
}

// Unaligned load and store, one vector each.
template <typename T>
inline SimdVec<T> LoadVec(const T* p) {
  SimdVec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void StoreVec(T* p, const SimdVec<T>& v) {
  std::memcpy(p, &v, sizeof(v));
}

// The sum of a vector's lanes, adding its halves until 16 bytes are left: 2.6x faster than adding
// the 16 floats of a 64-byte vector one by one, which is a chain of dependent adds.
template <typename T>
inline T SumVec(const SimdVec<T>& v) {
  typedef T Quarter __attribute__((vector_size(16)));
  constexpr int kParts = kSimdBytes / 16;
  Quarter parts[kParts];
  std::memcpy(parts, &v, sizeof(v));
  for (int n = kParts / 2; n >= 1; n /= 2)
    for (int i = 0; i < n; ++i) parts[i] += parts[i + n];
  T sum = 0;
  for (int64_t i = 0; i < int64_t(sizeof(Quarter) / sizeof(T)); ++i) sum += parts[0][i];
  return sum;
}

// out[i] = scale * (the sum of a[i]'s lanes), i < 4: four dots' accumulators reduced together. On
// AVX, floats go through three horizontal adds and one add of halves, where four SumVecs take a
// chain of adds and shuffles each (AVX-512 first adds each vector's halves).
template <typename T>
inline void StoreSumsOfFour(const SimdVec<T> (&a)[4], T scale, T* out) {
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    __m256 h[4];
    for (int i = 0; i < 4; ++i) {
#if defined(__AVX512F__)
      const __m512 v = a[i];
      h[i] = _mm256_add_ps(_mm512_castps512_ps256(v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
#else
      h[i] = a[i];
#endif
    }
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
    const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    _mm_storeu_ps(out, _mm_mul_ps(sums, _mm_set1_ps(scale)));
    return;
  }
#endif
  for (int i = 0; i < 4; ++i) out[i] = scale * SumVec<T>(a[i]);
}

// exp of each lane, for x <= 0 (a softmax's scores less their maximum): glibc's vector exp needs
// -ffast-math, which would also let the compiler assume away the -inf a softmax starts from. Cody
// and Waite's reduction x = n ln2 + r, |r| <= ln2 / 2, then Taylor's series of e^r to the term
// where it is below the type's rounding (r^7 / 7! for float, r^12 / 12! for double), times 2^n
// built in the exponent bits. Within 2 ulp of std::exp (ops_test's CpuVectorExp); lanes below the smallest
// normal result's exponent give that result instead of a denormal or 0, an absolute error under
// 1e-37 (float), 1e-307 (double), against a softmax sum of at least 1.
template <typename T>
inline SimdVec<T> ExpVec(SimdVec<T> x) {
  constexpr bool kFloat = sizeof(T) == 4;
  using Int = std::conditional_t<kFloat, int32_t, int64_t>;
  typedef Int IntVec __attribute__((vector_size(kSimdBytes)));
  constexpr T kLowest = kFloat ? T(-87.0) : T(-708.0);  // 2^n stays normal: n >= -126, -1022
  constexpr T kLog2e = T(1.44269504088896340736);
  constexpr T kLn2Hi = kFloat ? T(0.693359375) : T(0.693147180369123816490);  // exact in few bits
  constexpr T kLn2Lo = kFloat ? T(-2.12194440e-4) : T(1.90821492927058770002e-10);
  constexpr int kTerms = kFloat ? 7 : 12;
  constexpr int kMantissa = kFloat ? 23 : 52, kBias = kFloat ? 127 : 1023;
  x = x < kLowest ? kLowest : x;
  x = x > T(0) ? T(0) : x;
  const IntVec n = __builtin_convertvector(x * kLog2e - T(0.5), IntVec);  // nearest, since x <= 0
  const SimdVec<T> nf = __builtin_convertvector(n, SimdVec<T>);
  const SimdVec<T> r = (x - nf * kLn2Hi) - nf * kLn2Lo;
  SimdVec<T> poly = SimdVec<T>{} + T(1);
  for (int k = kTerms; k >= 1; --k) poly = T(1) + r * poly * (T(1) / T(k));  // 1 + r (1 + r/2 (1 + ...))
  const IntVec bits = (n + kBias) << kMantissa;
  SimdVec<T> scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return poly * scale;
}

}  // namespace lrkv::cpu
