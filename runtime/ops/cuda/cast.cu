#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cast.h"
#include "runtime/ops/cuda/cast.cuh"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv::cuda {
namespace {

template <typename From>
absl::Status CastFrom(const Tensor& src, Tensor& dst) {
  const int64_t n = src.numel();
  if (n == 0) return absl::OkStatus();
  const From* s = src.data<From>();
  switch (dst.dtype()) {
    case DType::kF32:
      cast::CastKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(s, dst.data<float>(), n);
      break;
    case DType::kF64:
      cast::CastKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(s, dst.data<double>(), n);
      break;
    case DType::kBF16:
      cast::CastKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(s, dst.data<bf16>(), n);
      break;
    default:
      return absl::UnimplementedError(absl::StrCat("Cast to ", DTypeName(dst.dtype()), " on cuda"));
  }
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status Cast(const Tensor& src, Tensor& dst) { LRKV_CUDA_FLOAT_DISPATCH(src.dtype(), CastFrom, src, dst); }

}  // namespace lrkv::cuda
