#include "runtime/ops/cast.h"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/cuda/kernel_utils.cuh"

namespace lrkv::cuda {
namespace {

template <typename From, typename To>
__global__ void CastKernel(const From* __restrict__ src, To* __restrict__ dst, int64_t n) {
  LRKV_GRID_STRIDE(i, n) dst[i] = FromAcc<To>(static_cast<Acc<To>>(ToAcc(src[i])));
}

template <typename From>
absl::Status CastFrom(const Tensor& src, Tensor& dst) {
  const int64_t n = src.numel();
  if (n == 0) return absl::OkStatus();
  const From* s = src.data<From>();
  switch (dst.dtype()) {
    case DType::kF32: CastKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(s, dst.data<float>(), n); break;
    case DType::kF64: CastKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(s, dst.data<double>(), n); break;
    case DType::kBF16: CastKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(s, dst.data<bf16>(), n); break;
    default: return absl::UnimplementedError(absl::StrCat("Cast to ", DTypeName(dst.dtype()), " on cuda"));
  }
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status Cast(const Tensor& src, Tensor& dst) {
  LRKV_CUDA_FLOAT_DISPATCH(src.dtype(), CastFrom, src, dst);
}

}  // namespace lrkv::cuda
