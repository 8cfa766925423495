#include "runtime/ops/cast.h"

#include "runtime/ops/cpu/kernels.h"

namespace lrkv::cpu {
namespace {

// The element types of the host: bf16 as its bits.
float Widen(float x) { return x; }
double Widen(double x) { return x; }
float Widen(uint16_t x) { return BF16BitsToFloat(x); }
template <typename To> To Narrow(double x) { return static_cast<To>(x); }
template <> uint16_t Narrow<uint16_t>(double x) { return FloatToBF16Bits(static_cast<float>(x)); }

template <typename From, typename To>
void Convert(const From* src, To* dst, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dst[i] = Narrow<To>(Widen(src[i]));
}

template <typename From>
absl::Status CastFrom(const From* src, Tensor& dst, int64_t n) {
  switch (dst.dtype()) {
    case DType::kF32: Convert(src, dst.data<float>(), n); return absl::OkStatus();
    case DType::kF64: Convert(src, dst.data<double>(), n); return absl::OkStatus();
    case DType::kBF16: Convert(src, dst.data<uint16_t>(), n); return absl::OkStatus();
    default: return absl::UnimplementedError(absl::StrCat("Cast to ", DTypeName(dst.dtype()), " on cpu"));
  }
}

}  // namespace

absl::Status Cast(const Tensor& src, Tensor& dst) {
  const int64_t n = src.numel();
  switch (src.dtype()) {
    case DType::kF32: return CastFrom(src.data<float>(), dst, n);
    case DType::kF64: return CastFrom(src.data<double>(), dst, n);
    case DType::kBF16: return CastFrom(src.data<uint16_t>(), dst, n);
    default: return absl::UnimplementedError(absl::StrCat("Cast from ", DTypeName(src.dtype()), " on cpu"));
  }
}

}  // namespace lrkv::cpu
