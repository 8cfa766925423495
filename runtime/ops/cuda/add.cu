// Residual add on CUDA; out may alias a or b (each element is read before it is written).
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/add.h"
#include "runtime/ops/cuda/add.cuh"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv::cuda {
namespace {

template <typename T>
absl::Status Kernel(const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return absl::OkStatus();
  add::AddKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(a.data<T>(), b.data<T>(), out.data<T>(), n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status Add(const Tensor& a, const Tensor& b, Tensor& out) {
  LRKV_CUDA_FLOAT_DISPATCH(out.dtype(), Kernel, a, b, out);
}

}  // namespace lrkv::cuda
