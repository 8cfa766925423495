// The CUDA kernels of gemm.cu, which launches them. Compiled by nvcc (through gemm.cu) and,
// for tests on a machine without a GPU, by the host compiler under tests/testing/cuda_on_cpu.h
// (tests/unit/cuda_kernels_on_cpu_test.cc): they use only what runtime/cuda/device_math.cuh
// and that header provide. Internal linkage (the unnamed namespace), so that a test's host
// copies and the .cu's launch stubs, which share their names, never meet at link time.
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
