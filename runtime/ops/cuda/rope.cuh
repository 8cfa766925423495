// The CUDA kernels of rope.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::rope {
namespace {

template <typename T>
__global__ void RopeKernel(const T* x, T* y, int64_t rows, int64_t t, int64_t h, int64_t d, int64_t rope_dims,
                           double theta, double direction, int64_t first_position) {
  using A = Acc<T>;
  const int64_t half = rope_dims / 2, first = d - rope_dims, per_row = first + half;
  LRKV_GRID_STRIDE(idx, rows * per_row) {
    const int64_t row = idx / per_row, i = idx % per_row;
    const T* xv = x + row * d;
    T* yv = y + row * d;
    if (i < first) {
      yv[i] = xv[i];
    } else {
      const int64_t pair = i - first, p = first_position + row / h % t;
      const double angle = double(p) * pow(theta, -2.0 * double(pair) / double(rope_dims));
      const A c = static_cast<A>(cos(angle)), s = static_cast<A>(direction * sin(angle));
      const A a = ToAcc(xv[first + pair]), b = ToAcc(xv[first + half + pair]);
      yv[first + pair] = FromAcc<T>(a * c - b * s);
      yv[first + half + pair] = FromAcc<T>(a * s + b * c);
    }
  }
}

}  // namespace
}  // namespace lrkv::cuda::rope
