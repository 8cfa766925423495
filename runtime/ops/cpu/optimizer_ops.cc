#include <cmath>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/optimizer_ops.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status SumSq(const Tensor& x, double* out) {
  const int64_t n = x.numel();
  const T* xs = x.data<T>();
  double s = 0;
#pragma omp parallel for simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += double(xs[i]) * xs[i];
  *out = s;
  return absl::OkStatus();
}

template <typename T>
absl::Status ScaleKernel(Tensor& x, double factor) {
  const int64_t n = x.numel();
  T* xs = x.data<T>();
  const T f = static_cast<T>(factor);
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; ++i) xs[i] *= f;
  return absl::OkStatus();
}

template <typename T>
absl::Status Adam(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  const int64_t n = param.numel();
  T* p = param.data<T>();
  const T* g = grad.data<T>();
  T *ms = m.data<T>(), *vs = v.data<T>();
  const T b1 = T(s.beta1), b2 = T(s.beta2), lr = T(s.lr), wd = T(s.weight_decay), eps = T(s.eps);
  const T c1 = T(1.0 / (1.0 - std::pow(s.beta1, double(s.step))));
  const T c2 = T(1.0 / (1.0 - std::pow(s.beta2, double(s.step))));
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; ++i) {
    ms[i] = b1 * ms[i] + (T(1) - b1) * g[i];
    vs[i] = b2 * vs[i] + (T(1) - b2) * g[i] * g[i];
    p[i] -= lr * (ms[i] * c1 / (std::sqrt(vs[i] * c2) + eps) + wd * p[i]);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SumSquares(const Tensor& x, double* out) { LRKV_CPU_FLOAT_DISPATCH(x.dtype(), SumSq, x, out); }
absl::Status Scale(Tensor& x, double factor) { LRKV_CPU_FLOAT_DISPATCH(x.dtype(), ScaleKernel, x, factor); }
absl::Status AdamWUpdate(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  LRKV_CPU_FLOAT_DISPATCH(param.dtype(), Adam, param, grad, m, v, s);
}

}  // namespace lrkv::cpu
