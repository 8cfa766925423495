// The CUDA kernels of add.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
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
