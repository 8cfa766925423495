// The CUDA kernels of cast.cu, which launches them. Compiled by nvcc (through cast.cu) and,
// for tests on a machine without a GPU, by the host compiler under tests/testing/cuda_on_cpu.h
// (tests/unit/cuda_kernels_on_cpu_test.cc): they use only what runtime/cuda/device_math.cuh
// and that header provide. Internal linkage (the unnamed namespace), so that a test's host
// copies and the .cu's launch stubs, which share their names, never meet at link time.
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::cast {
namespace {

template <typename From, typename To>
__global__ void CastKernel(const From* __restrict__ src, To* __restrict__ dst, int64_t n) {
  LRKV_GRID_STRIDE(i, n) dst[i] = FromAcc<To>(static_cast<Acc<To>>(ToAcc(src[i])));
}

}  // namespace
}  // namespace lrkv::cuda::cast
