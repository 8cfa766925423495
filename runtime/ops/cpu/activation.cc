#include <cmath>

#include "runtime/ops/activation.h"
#include "runtime/ops/cpu/kernels.h"

namespace lrkv::cpu {
namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;

template <typename T>
absl::Status Forward(Activation act, const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  const T* xs = x.data<T>();
  T* ys = y.data<T>();
  if (act == Activation::kGelu) {
#pragma omp parallel for simd
    for (int64_t i = 0; i < n; ++i) {
      const T v = xs[i];
      ys[i] = T(0.5) * v * (T(1) + std::tanh(T(kSqrt2OverPi) * (v + T(kGeluCubic) * v * v * v)));
    }
  } else {
#pragma omp parallel for simd
    for (int64_t i = 0; i < n; ++i) ys[i] = xs[i] > 0 ? xs[i] * xs[i] : T(0);
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx) {
  const int64_t n = x.numel();
  const T *xs = x.data<T>(), *dys = dy.data<T>();
  T* dxs = dx.data<T>();
  if (act == Activation::kGelu) {
#pragma omp parallel for simd
    for (int64_t i = 0; i < n; ++i) {
      const T v = xs[i];
      const T u = T(kSqrt2OverPi) * (v + T(kGeluCubic) * v * v * v);
      const T th = std::tanh(u);
      const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * v * v);
      dxs[i] = dys[i] * (T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * du);
    }
  } else {
#pragma omp parallel for simd
    for (int64_t i = 0; i < n; ++i) dxs[i] = xs[i] > 0 ? T(2) * xs[i] * dys[i] : T(0);
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status GluForward(const Tensor& gate, const Tensor& up, Tensor& y) {
  const int64_t n = y.numel();
  const T *g = gate.data<T>(), *u = up.data<T>();
  T* ys = y.data<T>();
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; ++i) ys[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];
  return absl::OkStatus();
}

// silu(g) = g s(g); silu'(g) = s(g) (1 + g (1 - s(g))).
template <typename T>
absl::Status GluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  const int64_t n = dy.numel();
  const T *g = gate.data<T>(), *u = up.data<T>(), *d = dy.data<T>();
  T *dg = dgate.data<T>(), *du = dup.data<T>();
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; ++i) {
    const T s = T(1) / (T(1) + std::exp(-g[i]));
    du[i] = d[i] * g[i] * s;
    dg[i] = d[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ActivationForward(Activation act, const Tensor& x, Tensor& y) {
  LRKV_CPU_FLOAT_DISPATCH(x.dtype(), Forward, act, x, y);
}
absl::Status ActivationBackward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx) {
  LRKV_CPU_FLOAT_DISPATCH(x.dtype(), Backward, act, dy, x, dx);
}
absl::Status SwiGluForward(const Tensor& gate, const Tensor& up, Tensor& y) {
  LRKV_CPU_FLOAT_DISPATCH(y.dtype(), GluForward, gate, up, y);
}
absl::Status SwiGluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  LRKV_CPU_FLOAT_DISPATCH(dy.dtype(), GluBackward, dy, gate, up, dgate, dup);
}

}  // namespace lrkv::cpu
