// The CUDA kernels of head_slice.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::head_slice {
namespace {

template <typename T>
__global__ void CopyKernel(const T* __restrict__ s, T* __restrict__ d, int64_t n, int64_t h, int64_t dd, int64_t hs,
                           int64_t ds, int64_t offset) {
  LRKV_GRID_STRIDE(idx, n * h * ds) {
    const int64_t j = idx % ds, hi = idx / ds % h, i = idx / (ds * h);
    d[(i * h + hi) * dd + offset + j] = s[(i * hs + (hs == 1 ? 0 : hi)) * ds + j];
  }
}

template <typename T>
__global__ void ReduceKernel(const T* __restrict__ g, T* __restrict__ out, int64_t n, int64_t h, int64_t dd, int64_t hs,
                             int64_t ds, int64_t offset) {
  LRKV_GRID_STRIDE(idx, n * hs * ds) {
    const int64_t j = idx % ds, si = idx / ds % hs, i = idx / (ds * hs);
    Acc<T> acc = 0;
    if (hs == 1) {
      for (int64_t hi = 0; hi < h; ++hi) acc += ToAcc(g[(i * h + hi) * dd + offset + j]);
    } else {
      acc = ToAcc(g[(i * h + si) * dd + offset + j]);
    }
    out[idx] = FromAcc<T>(acc);
  }
}

}  // namespace
}  // namespace lrkv::cuda::head_slice
