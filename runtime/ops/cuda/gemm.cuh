// The CUDA kernels of gemm.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::gemm {
namespace {

// k == 0 (an LRKV rank of zero): C = beta * C, in C's own element type (T or Acc<T>).
template <typename C>
__global__ void ScaleOnly(C* c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c, int64_t batch, double beta) {
  LRKV_GRID_STRIDE(idx, batch * m * n) {
    const int64_t b = idx / (m * n), i = idx / n % m, j = idx % n;
    C& x = c[b * stride_c + i * ldc + j];
    x = beta == 0.0 ? FromAcc<C>(Acc<C>(0)) : FromAcc<C>(static_cast<Acc<C>>(beta) * ToAcc(x));
  }
}

}  // namespace
}  // namespace lrkv::cuda::gemm
