// RMSNorm on CUDA: one block per row for the forward and dx (block reductions in Acc<T>), and the
// weight gradient as deterministic two-stage column sums (no atomics). x, y, w, dy, dx: T; rstd (N):
// Acc<T>, so bf16 rows keep fp32 statistics; dw (C): T or Acc<T> (an fp32 gradient of a bf16 weight).
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/cuda/rmsnorm.cuh"
#include "runtime/ops/rmsnorm.h"

namespace lrkv::cuda {
namespace {

template <typename T>
absl::Status Forward(const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  if (n == 0) return absl::OkStatus();
  rmsnorm::ForwardKernel<<<static_cast<unsigned>(n), RowThreads(c), 0, CurrentStream()>>>(
      x.data<T>(), w ? w->data<T>() : nullptr, eps, y.data<T>(), rstd.data<Acc<T>>(), c);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd, Tensor& dx, Tensor* dw) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  if (n == 0) return absl::OkStatus();
  rmsnorm::BackwardDxKernel<<<static_cast<unsigned>(n), RowThreads(c), 0, CurrentStream()>>>(
      dy.data<T>(), x.data<T>(), w ? w->data<T>() : nullptr, rstd.data<Acc<T>>(), dx.data<T>(), c);
  LRKV_CUDA_TRY_LAUNCH();
  if (dw != nullptr) {
    const int64_t per = RowsPerChunk(n), chunks = (n + per - 1) / per;
    LRKV_TRY_ASSIGN(Tensor partial, Tensor::Empty({chunks, c}, DTypeOf<Acc<T>>::value, Device::kCuda));
    const dim3 grid(static_cast<unsigned>((c + kThreads - 1) / kThreads), static_cast<unsigned>(chunks));
    rmsnorm::DwPartials<<<grid, kThreads, 0, CurrentStream()>>>(dy.data<T>(), x.data<T>(), rstd.data<Acc<T>>(), n, c,
                                                                per, partial.data<Acc<T>>());
    LRKV_CUDA_TRY_LAUNCH();
    LRKV_TRY(FinishInto<T>(partial.data<Acc<T>>(), chunks, c, *dw));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RmsNormForward(const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Forward, x, w, eps, y, rstd);
}
absl::Status RmsNormBackward(const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd, Tensor& dx,
                             Tensor* dw) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Backward, dy, x, w, rstd, dx, dw);
}

}  // namespace lrkv::cuda
