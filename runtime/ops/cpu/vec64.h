// 64 bytes of float or double as one GCC vector: one AVX-512 register (GCC lowers it to narrower
// ones on machines without). For the few CPU kernels whose inner loops GCC 12 does not vectorize
// well on its own (its `omp simd` reductions kept their sums on the stack), written with these.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace lrkv::cpu {

typedef float FloatVec64 __attribute__((vector_size(64)));
typedef double DoubleVec64 __attribute__((vector_size(64)));
template <typename T> struct Vec64Of;
template <> struct Vec64Of<float> { using type = FloatVec64; };
template <> struct Vec64Of<double> { using type = DoubleVec64; };
template <typename T> using Vec64 = typename Vec64Of<T>::type;
template <typename T> constexpr int64_t kLanes64 = sizeof(Vec64<T>) / sizeof(T);

// n rounded up to whole vectors of T: the width of a tile whose columns are padded to lanes.
template <typename T>
constexpr int64_t RoundUpToVectors(int64_t n) {
  return (n + kLanes64<T> - 1) / kLanes64<T> * kLanes64<T>;
}

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

// The sum of a vector's lanes, halving the vector until 4 lanes are left: 2.6x faster than adding
// the 16 floats one by one, which is a chain of dependent adds.
template <typename T>
inline T Sum64(const Vec64<T>& v) {
  typedef T Half __attribute__((vector_size(32)));
  typedef T Quarter __attribute__((vector_size(16)));
  Half low, high;
  std::memcpy(&low, &v, sizeof(low));
  std::memcpy(&high, reinterpret_cast<const char*>(&v) + sizeof(low), sizeof(high));
  const Half halves = low + high;
  Quarter a, b;
  std::memcpy(&a, &halves, sizeof(a));
  std::memcpy(&b, reinterpret_cast<const char*>(&halves) + sizeof(a), sizeof(b));
  const Quarter quarters = a + b;
  T sum = 0;
  for (int64_t i = 0; i < int64_t(sizeof(Quarter) / sizeof(T)); ++i) sum += quarters[i];
  return sum;
}

// exp of each lane, for x <= 0 (a softmax's scores less their maximum): glibc's vector exp needs
// -ffast-math, which would also let the compiler assume away the -inf a softmax starts from. Cody
// and Waite's reduction x = n ln2 + r, |r| <= ln2 / 2, then Taylor's series of e^r to the term
// where it is below the type's rounding (r^7 / 7! for float, r^12 / 12! for double), times 2^n
// built in the exponent bits. Within 2 ulp of std::exp (ops_test's CpuVectorExp); lanes below the smallest
// normal result's exponent give that result instead of a denormal or 0, an absolute error under
// 1e-37 (float), 1e-307 (double), against a softmax sum of at least 1.
template <typename T>
inline Vec64<T> Exp64(Vec64<T> x) {
  constexpr bool kFloat = sizeof(T) == 4;
  using Int = std::conditional_t<kFloat, int32_t, int64_t>;
  typedef Int IntVec __attribute__((vector_size(64)));
  constexpr T kLowest = kFloat ? T(-87.0) : T(-708.0);  // 2^n stays normal: n >= -126, -1022
  constexpr T kLog2e = T(1.44269504088896340736);
  constexpr T kLn2Hi = kFloat ? T(0.693359375) : T(0.693147180369123816490);  // exact in few bits
  constexpr T kLn2Lo = kFloat ? T(-2.12194440e-4) : T(1.90821492927058770002e-10);
  constexpr int kTerms = kFloat ? 7 : 12;
  constexpr int kMantissa = kFloat ? 23 : 52, kBias = kFloat ? 127 : 1023;
  x = x < kLowest ? kLowest : x;
  x = x > T(0) ? T(0) : x;
  const IntVec n = __builtin_convertvector(x * kLog2e - T(0.5), IntVec);  // nearest, since x <= 0
  const Vec64<T> nf = __builtin_convertvector(n, Vec64<T>);
  const Vec64<T> r = (x - nf * kLn2Hi) - nf * kLn2Lo;
  Vec64<T> poly = Vec64<T>{} + T(1);
  for (int k = kTerms; k >= 1; --k) poly = T(1) + r * poly * (T(1) / T(k));  // 1 + r (1 + r/2 (1 + ...))
  const IntVec bits = (n + kBias) << kMantissa;
  Vec64<T> scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return poly * scale;
}

}  // namespace lrkv::cpu
