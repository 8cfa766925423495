// The CUDA kernels of cross_entropy.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::cross_entropy {
namespace {

template <typename T>
__global__ void RowMaxKernel(const T* __restrict__ z, Acc<T>* __restrict__ m, int64_t v) {
  const int64_t row = blockIdx.x;
  Acc<T> mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) mx = max(mx, ToAcc(z[row * v + j]));
  mx = BlockMax(mx);
  if (threadIdx.x == 0) m[row] = mx;
}

template <typename T>
__global__ void PartialSumsKernel(const T* __restrict__ z, const int32_t* __restrict__ tgt, int64_t col_begin,
                                  const Acc<T>* __restrict__ m, double* __restrict__ out, int64_t v) {
  const int64_t row = blockIdx.x;
  const T* zi = z + row * v;
  const Acc<T> mi = m[row];
  double s = 0;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) s += static_cast<double>(Exp(ToAcc(zi[j]) - mi));
  s = BlockSum(s);
  if (threadIdx.x == 0) {
    const int64_t local = tgt[row] - col_begin;
    out[2 * row] = s;
    out[2 * row + 1] = local >= 0 && local < v ? static_cast<double>(ToAcc(zi[local])) : 0.0;
  }
}

template <typename T>
__global__ void BackwardKernel(const T* __restrict__ z, const int32_t* __restrict__ tgt, int64_t col_begin,
                               const Acc<T>* __restrict__ lse, double scale, T* __restrict__ dz, int64_t n, int64_t v) {
  using A = Acc<T>;
  const A s = static_cast<A>(scale);
  LRKV_GRID_STRIDE(idx, n * v) {
    const int64_t i = idx / v, j = idx % v;
    A g = Exp(ToAcc(z[idx]) - lse[i]) * s;
    if (tgt[i] - col_begin == j) g -= s;
    dz[idx] = FromAcc<T>(g);
  }
}

}  // namespace
}  // namespace lrkv::cuda::cross_entropy
