// LayerNorm on CUDA: one block per row for the forward and dx, two-stage column sums for dw and db.
// x, y, w, b, dy, dx: T; mean, rstd (N): Acc<T>, so bf16 rows keep fp32 statistics; dw, db (C): T or
// Acc<T> (fp32 gradients of bf16 parameters).
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/cuda/layernorm.cuh"
#include "runtime/ops/layernorm.h"

namespace lrkv::cuda {
namespace {

template <typename T>
absl::Status Forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                     Tensor& rstd) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  if (n == 0) return absl::OkStatus();
  layernorm::ForwardKernel<<<static_cast<unsigned>(n), RowThreads(c), 0, CurrentStream()>>>(
      x.data<T>(), w.data<T>(), b.data<T>(), eps, y.data<T>(), mean.data<Acc<T>>(), rstd.data<Acc<T>>(), c);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                      Tensor& dx, Tensor& dw, Tensor& db) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  if (n == 0) return absl::OkStatus();
  layernorm::BackwardDxKernel<<<static_cast<unsigned>(n), RowThreads(c), 0, CurrentStream()>>>(
      dy.data<T>(), x.data<T>(), w.data<T>(), mean.data<Acc<T>>(), rstd.data<Acc<T>>(), dx.data<T>(), c);
  LRKV_CUDA_TRY_LAUNCH();
  const int64_t per = RowsPerChunk(n), chunks = (n + per - 1) / per;
  LRKV_TRY_ASSIGN(Tensor partial, Tensor::Empty({2, chunks, c}, DTypeOf<Acc<T>>::value, Device::kCuda));
  Acc<T>* pw = partial.data<Acc<T>>();
  Acc<T>* pb = pw + chunks * c;
  const dim3 grid(static_cast<unsigned>((c + kThreads - 1) / kThreads), static_cast<unsigned>(chunks));
  layernorm::ParamPartials<<<grid, kThreads, 0, CurrentStream()>>>(dy.data<T>(), x.data<T>(), mean.data<Acc<T>>(),
                                                                   rstd.data<Acc<T>>(), n, c, per, pw, pb);
  LRKV_CUDA_TRY_LAUNCH();
  LRKV_TRY(FinishInto<T>(pw, chunks, c, dw));
  return FinishInto<T>(pb, chunks, c, db);
}

}  // namespace

absl::Status LayerNormForward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                              Tensor& rstd) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Forward, x, w, b, eps, y, mean, rstd);
}
absl::Status LayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                               const Tensor& rstd, Tensor& dx, Tensor& dw, Tensor& db) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Backward, dy, x, w, mean, rstd, dx, dw, db);
}

}  // namespace lrkv::cuda
