// RMSNorm on CUDA: one block per row for the forward and dx (block reductions in Acc<T>), and the
// weight gradient as deterministic two-stage column sums (no atomics). x, y, w, dy, dx: T; rstd (N):
// Acc<T>, so bf16 rows keep fp32 statistics; dw (C): T or Acc<T> (an fp32 gradient of a bf16 weight).
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/rmsnorm.h"

namespace lrkv::cuda {
namespace {

template <typename T>
__global__ void ForwardKernel(const T* __restrict__ x, const T* __restrict__ w, double eps, T* __restrict__ y,
                              Acc<T>* __restrict__ rstd, int64_t c) {
  using A = Acc<T>;
  const int64_t row = blockIdx.x;
  const T* xi = x + row * c;
  A ss = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const A v = ToAcc(xi[j]);
    ss += v * v;
  }
  ss = BlockSum(ss);
  const A r = A(1) / Sqrt(ss / A(c) + A(eps));
  if (threadIdx.x == 0) rstd[row] = r;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    y[row * c + j] = FromAcc<T>(ToAcc(xi[j]) * r * (w ? ToAcc(w[j]) : A(1)));
  }
}

template <typename T>
__global__ void BackwardDxKernel(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ w,
                                 const Acc<T>* __restrict__ rstd, T* __restrict__ dx, int64_t c) {
  using A = Acc<T>;
  const int64_t row = blockIdx.x;
  const A r = rstd[row];
  A dot = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    dot += ToAcc(dy[row * c + j]) * (w ? ToAcc(w[j]) : A(1)) * ToAcc(x[row * c + j]) * r;
  }
  const A mean_dot = BlockSum(dot) / A(c);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const int64_t k = row * c + j;
    dx[k] = FromAcc<T>(r * (ToAcc(dy[k]) * (w ? ToAcc(w[j]) : A(1)) - ToAcc(x[k]) * r * mean_dot));
  }
}

template <typename T>
__global__ void DwPartials(const T* __restrict__ dy, const T* __restrict__ x, const Acc<T>* __restrict__ rstd,
                           int64_t n, int64_t c, int64_t per, Acc<T>* __restrict__ partial) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  if (j >= c) return;
  Acc<T> s = 0;
  const int64_t end = min(n, (chunk + 1) * per);
  for (int64_t i = chunk * per; i < end; ++i) s += ToAcc(dy[i * c + j]) * ToAcc(x[i * c + j]) * rstd[i];
  partial[chunk * c + j] = s;
}

template <typename T>
absl::Status Forward(const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  if (n == 0) return absl::OkStatus();
  ForwardKernel<<<static_cast<unsigned>(n), RowThreads(c), 0, CurrentStream()>>>(x.data<T>(), w ? w->data<T>() : nullptr, eps, y.data<T>(),
                                                          rstd.data<Acc<T>>(), c);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd, Tensor& dx, Tensor* dw) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  if (n == 0) return absl::OkStatus();
  BackwardDxKernel<<<static_cast<unsigned>(n), RowThreads(c), 0, CurrentStream()>>>(dy.data<T>(), x.data<T>(), w ? w->data<T>() : nullptr,
                                                             rstd.data<Acc<T>>(), dx.data<T>(), c);
  LRKV_CUDA_TRY_LAUNCH();
  if (dw != nullptr) {
    const int64_t per = RowsPerChunk(n), chunks = (n + per - 1) / per;
    LRKV_TRY_ASSIGN(Tensor partial, Tensor::Empty({chunks, c}, DTypeOf<Acc<T>>::value, Device::kCuda));
    const dim3 grid(static_cast<unsigned>((c + kThreads - 1) / kThreads), static_cast<unsigned>(chunks));
    DwPartials<<<grid, kThreads, 0, CurrentStream()>>>(dy.data<T>(), x.data<T>(), rstd.data<Acc<T>>(), n, c, per,
                                                       partial.data<Acc<T>>());
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
