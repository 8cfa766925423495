// LayerNorm on CUDA: one block per row for the forward and dx, two-stage column sums for dw and db.
// x, y, w, b, dy, dx: T; mean, rstd (N): Acc<T>, so bf16 rows keep fp32 statistics; dw, db (C): T or
// Acc<T> (fp32 gradients of bf16 parameters).
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/layernorm.h"

namespace lrkv::cuda {
namespace {

template <typename T>
__global__ void ForwardKernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, double eps,
                              T* __restrict__ y, Acc<T>* __restrict__ mean, Acc<T>* __restrict__ rstd, int64_t c) {
  using A = Acc<T>;
  const int64_t row = blockIdx.x;
  const T* xi = x + row * c;
  A s = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += ToAcc(xi[j]);
  const A m = BlockSum(s) / A(c);
  A v = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const A d = ToAcc(xi[j]) - m;
    v += d * d;
  }
  const A r = A(1) / Sqrt(BlockSum(v) / A(c) + A(eps));
  if (threadIdx.x == 0) {
    mean[row] = m;
    rstd[row] = r;
  }
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    y[row * c + j] = FromAcc<T>((ToAcc(xi[j]) - m) * r * ToAcc(w[j]) + ToAcc(b[j]));
  }
}

template <typename T>
__global__ void BackwardDxKernel(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ w,
                                 const Acc<T>* __restrict__ mean, const Acc<T>* __restrict__ rstd, T* __restrict__ dx,
                                 int64_t c) {
  using A = Acc<T>;
  const int64_t row = blockIdx.x;
  const A m = mean[row], r = rstd[row];
  A gs = 0, gxs = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const A g = ToAcc(dy[row * c + j]) * ToAcc(w[j]);
    gs += g;
    gxs += g * (ToAcc(x[row * c + j]) - m) * r;
  }
  const A g_mean = BlockSum(gs) / A(c);
  const A gx_mean = BlockSum(gxs) / A(c);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const int64_t k = row * c + j;
    const A xhat = (ToAcc(x[k]) - m) * r;
    dx[k] = FromAcc<T>(r * (ToAcc(dy[k]) * ToAcc(w[j]) - g_mean - xhat * gx_mean));
  }
}

template <typename T>
__global__ void ParamPartials(const T* __restrict__ dy, const T* __restrict__ x, const Acc<T>* __restrict__ mean,
                              const Acc<T>* __restrict__ rstd, int64_t n, int64_t c, int64_t per,
                              Acc<T>* __restrict__ partial_w, Acc<T>* __restrict__ partial_b) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  if (j >= c) return;
  Acc<T> sw = 0, sb = 0;
  const int64_t end = min(n, (chunk + 1) * per);
  for (int64_t i = chunk * per; i < end; ++i) {
    const Acc<T> d = ToAcc(dy[i * c + j]);
    sw += d * (ToAcc(x[i * c + j]) - mean[i]) * rstd[i];
    sb += d;
  }
  partial_w[chunk * c + j] = sw;
  partial_b[chunk * c + j] = sb;
}

template <typename T>
absl::Status Forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                     Tensor& rstd) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  if (n == 0) return absl::OkStatus();
  ForwardKernel<<<static_cast<unsigned>(n), RowThreads(c), 0, CurrentStream()>>>(x.data<T>(), w.data<T>(), b.data<T>(), eps, y.data<T>(),
                                                          mean.data<Acc<T>>(), rstd.data<Acc<T>>(), c);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                      Tensor& dx, Tensor& dw, Tensor& db) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  if (n == 0) return absl::OkStatus();
  BackwardDxKernel<<<static_cast<unsigned>(n), RowThreads(c), 0, CurrentStream()>>>(dy.data<T>(), x.data<T>(), w.data<T>(),
                                                             mean.data<Acc<T>>(), rstd.data<Acc<T>>(), dx.data<T>(), c);
  LRKV_CUDA_TRY_LAUNCH();
  const int64_t per = RowsPerChunk(n), chunks = (n + per - 1) / per;
  LRKV_TRY_ASSIGN(Tensor partial, Tensor::Empty({2, chunks, c}, DTypeOf<Acc<T>>::value, Device::kCuda));
  Acc<T>* pw = partial.data<Acc<T>>();
  Acc<T>* pb = pw + chunks * c;
  const dim3 grid(static_cast<unsigned>((c + kThreads - 1) / kThreads), static_cast<unsigned>(chunks));
  ParamPartials<<<grid, kThreads, 0, CurrentStream()>>>(dy.data<T>(), x.data<T>(), mean.data<Acc<T>>(),
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
