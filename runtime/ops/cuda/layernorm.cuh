// The CUDA kernels of layernorm.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::layernorm {
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

}  // namespace
}  // namespace lrkv::cuda::layernorm
