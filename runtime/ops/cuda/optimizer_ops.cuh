// The CUDA kernels of optimizer_ops.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::optimizer {
namespace {

constexpr int kSumBlocks = 1024;

template <typename T>
__global__ void PartialSumSquares(const T* __restrict__ x, int64_t n, double* __restrict__ partial) {
  double s = 0;
  LRKV_GRID_STRIDE(i, n) {
    const double v = static_cast<double>(ToAcc(x[i]));
    s += v * v;
  }
  s = BlockSum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void SumPartials(const double* __restrict__ partial, int count, double* __restrict__ out) {
  double s = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = BlockSum(s);
  if (threadIdx.x == 0) *out = s;
}

template <typename T>
__global__ void ScaleKernel(T* x, int64_t n, double factor) {
  const Acc<T> f = static_cast<Acc<T>>(factor);
  LRKV_GRID_STRIDE(i, n) x[i] = FromAcc<T>(ToAcc(x[i]) * f);
}

template <typename T>
__global__ void AdamKernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v, int64_t n,
                           Acc<T> b1, Acc<T> b2, Acc<T> lr, Acc<T> wd, Acc<T> eps, Acc<T> c1, Acc<T> c2) {
  using A = Acc<T>;
  LRKV_GRID_STRIDE(i, n) {
    const A gi = ToAcc(g[i]);
    const A mi = b1 * ToAcc(m[i]) + (A(1) - b1) * gi;
    const A vi = b2 * ToAcc(v[i]) + (A(1) - b2) * gi * gi;
    const A pi = ToAcc(p[i]);
    m[i] = FromAcc<T>(mi);
    v[i] = FromAcc<T>(vi);
    p[i] = FromAcc<T>(pi - lr * (mi * c1 / (Sqrt(vi * c2) + eps) + wd * pi));
  }
}

}  // namespace
}  // namespace lrkv::cuda::optimizer
