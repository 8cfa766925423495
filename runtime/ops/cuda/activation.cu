// GELU (tanh), ReLU^2 and SwiGLU on CUDA: one thread per element (grid-stride), math in Acc<T>.
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/activation.h"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv::cuda {
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

template <typename T>
absl::Status Forward(Activation act, const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  ForwardKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(act == Activation::kGelu, x.data<T>(), y.data<T>(), n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}
template <typename T>
absl::Status Backward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx) {
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  BackwardKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(act == Activation::kGelu, dy.data<T>(), x.data<T>(),
                                                                dx.data<T>(), n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}
template <typename T>
absl::Status GluForward(const Tensor& gate, const Tensor& up, Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return absl::OkStatus();
  GluForwardKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(gate.data<T>(), up.data<T>(), y.data<T>(), n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}
template <typename T>
absl::Status GluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  const int64_t n = dy.numel();
  if (n == 0) return absl::OkStatus();
  GluBackwardKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(dy.data<T>(), gate.data<T>(), up.data<T>(),
                                                                   dgate.data<T>(), dup.data<T>(), n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status ActivationForward(Activation act, const Tensor& x, Tensor& y) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Forward, act, x, y);
}
absl::Status ActivationBackward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Backward, act, dy, x, dx);
}
absl::Status SwiGluForward(const Tensor& gate, const Tensor& up, Tensor& y) {
  LRKV_CUDA_FLOAT_DISPATCH(y.dtype(), GluForward, gate, up, y);
}
absl::Status SwiGluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  LRKV_CUDA_FLOAT_DISPATCH(dy.dtype(), GluBackward, dy, gate, up, dgate, dup);
}

}  // namespace lrkv::cuda
