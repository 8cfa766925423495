// The CUDA kernels of activation.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::activation {
namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;

template <typename T>
__global__ void ForwardKernel(bool gelu, const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  using A = Acc<T>;
  LRKV_GRID_STRIDE(i, n) {
    const A v = ToAcc(x[i]);
    A out;
    if (gelu) {
      out = A(0.5) * v * (A(1) + Tanh(A(kSqrt2OverPi) * (v + A(kGeluCubic) * v * v * v)));
    } else {
      out = v > A(0) ? v * v : A(0);
    }
    y[i] = FromAcc<T>(out);
  }
}

template <typename T>
__global__ void BackwardKernel(bool gelu, const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx,
                               int64_t n) {
  using A = Acc<T>;
  LRKV_GRID_STRIDE(i, n) {
    const A v = ToAcc(x[i]), d = ToAcc(dy[i]);
    A out;
    if (gelu) {
      const A u = A(kSqrt2OverPi) * (v + A(kGeluCubic) * v * v * v);
      const A th = Tanh(u);
      const A du = A(kSqrt2OverPi) * (A(1) + A(3 * kGeluCubic) * v * v);
      out = d * (A(0.5) * (A(1) + th) + A(0.5) * v * (A(1) - th * th) * du);
    } else {
      out = v > A(0) ? A(2) * v * d : A(0);
    }
    dx[i] = FromAcc<T>(out);
  }
}

template <typename T>
__global__ void GluForwardKernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ y, int64_t n) {
  using A = Acc<T>;
  LRKV_GRID_STRIDE(i, n) {
    const A g = ToAcc(gate[i]);
    y[i] = FromAcc<T>(g / (A(1) + Exp(-g)) * ToAcc(up[i]));
  }
}

// silu(g) = g s(g); silu'(g) = s(g) (1 + g (1 - s(g))).
template <typename T>
__global__ void GluBackwardKernel(const T* __restrict__ dy, const T* __restrict__ gate, const T* __restrict__ up,
                                  T* __restrict__ dgate, T* __restrict__ dup, int64_t n) {
  using A = Acc<T>;
  LRKV_GRID_STRIDE(i, n) {
    const A g = ToAcc(gate[i]), u = ToAcc(up[i]), d = ToAcc(dy[i]);
    const A s = A(1) / (A(1) + Exp(-g));
    dup[i] = FromAcc<T>(d * g * s);
    dgate[i] = FromAcc<T>(d * u * s * (A(1) + g * (A(1) - s)));
  }
}

}  // namespace
}  // namespace lrkv::cuda::activation
