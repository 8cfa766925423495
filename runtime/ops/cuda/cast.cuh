// The CUDA kernels of cast.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
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
