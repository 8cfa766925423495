// Element types and devices a tensor can have.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

namespace lrkv {

// fp32 trains by default; fp64 serves the finite-difference gradient checks; bf16 is mixed
// precision's compute dtype (train.precision = BF16, on both backends); i32 holds token ids.
enum class DType : uint8_t { kF32, kF64, kBF16, kI32 };
// kEmulated is a device made of host memory for tests: the CPU kernels run on it, but code outside
// a kernel may not touch its elements (Tensor::data stops the process), as with a GPU's memory. The
// trainer's device path (train.device) runs on it in CI, where no GPU is.
enum class Device : uint8_t { kCpu, kCuda, kEmulated };
constexpr int kDeviceKinds = 3;

inline int64_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
  }
  return 0;
}

inline const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
  }
  return "?";
}

// Whether C++ type T holds elements of `d`: float f32, double f64, int32_t i32; any other type
// (a backend's own 16-bit float for bf16) by its size.
template <typename T>
constexpr bool DTypeMatches(DType d) {
  if constexpr (std::is_same_v<T, float>) {
    return d == DType::kF32;
  } else if constexpr (std::is_same_v<T, double>) {
    return d == DType::kF64;
  } else if constexpr (std::is_same_v<T, int32_t>) {
    return d == DType::kI32;
  } else {
    return sizeof(T) == static_cast<size_t>(DTypeSize(d)) && d != DType::kF32 && d != DType::kI32;
  }
}

// Stops the process: a tensor of dtype `d` read as a type of `size` bytes.
[[noreturn]] void DTypeMismatch(DType d, size_t size);

inline const char* DeviceName(Device d) {
  switch (d) {
    case Device::kCpu: return "cpu";
    case Device::kCuda: return "cuda";
    case Device::kEmulated: return "emulated";
  }
  return "?";
}

// bf16 on the host: the upper 16 bits of an fp32, rounded to nearest even (NaN stays NaN).
inline uint16_t FloatToBF16Bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float BF16BitsToFloat(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// What a kernel computing in `compute` accumulates in, and the dtype of what it writes beside its
// outputs: norm and softmax statistics, the loss, parameter gradients. fp32 for bf16 (and fp32),
// fp64 for fp64. Mixed precision's rule, kept by every op launcher: bf16 values, fp32 statistics.
inline DType AccumDType(DType compute) { return compute == DType::kF64 ? DType::kF64 : DType::kF32; }

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kF64; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };

}  // namespace lrkv
