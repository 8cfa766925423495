// The CUDA kernels of rmsnorm.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::rmsnorm {
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

}  // namespace
}  // namespace lrkv::cuda::rmsnorm
