// The CUDA kernels of add.cu, which launches them. Compiled by nvcc (through add.cu) and,
// for tests on a machine without a GPU, by the host compiler under tests/testing/cuda_on_cpu.h
// (tests/unit/cuda_kernels_on_cpu_test.cc): they use only what runtime/cuda/device_math.cuh
// and that header provide. Internal linkage (the unnamed namespace), so that a test's host
// copies and the .cu's launch stubs, which share their names, never meet at link time.
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::add {
namespace {

template <typename T>
__global__ void AddKernel(const T* a, const T* b, T* out, int64_t n) {
  LRKV_GRID_STRIDE(i, n) out[i] = FromAcc<T>(ToAcc(a[i]) + ToAcc(b[i]));
}

}  // namespace
}  // namespace lrkv::cuda::add
