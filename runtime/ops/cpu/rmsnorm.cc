#include <cmath>
#include <vector>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/rmsnorm.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status Forward(const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  const T* xs = x.data<T>();
  const T* ws = w ? w->data<T>() : nullptr;
  T* ys = y.data<T>();
  T* rs = rstd.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const T* xi = xs + i * c;
    double ss = 0;
    for (int64_t j = 0; j < c; ++j) ss += double(xi[j]) * xi[j];
    const T r = static_cast<T>(1.0 / std::sqrt(ss / c + eps));
    rs[i] = r;
    T* yi = ys + i * c;
    for (int64_t j = 0; j < c; ++j) yi[j] = xi[j] * r * (ws ? ws[j] : T(1));
  }
  return absl::OkStatus();
}

// With xhat = x * r: dx = r * (g - xhat * mean(g * xhat)), g = dy * w; dw += sum_rows dy * xhat.
template <typename T>
absl::Status Backward(const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd, Tensor& dx,
                      Tensor* dw) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  const T* xs = x.data<T>();
  const T* ws = w ? w->data<T>() : nullptr;
  const T* dys = dy.data<T>();
  const T* rs = rstd.data<T>();
  T* dxs = dx.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const T* xi = xs + i * c;
    const T* dyi = dys + i * c;
    double dot = 0;
    for (int64_t j = 0; j < c; ++j) dot += double(dyi[j]) * (ws ? ws[j] : T(1)) * xi[j] * rs[i];
    const T mean_dot = static_cast<T>(dot / c);
    T* dxi = dxs + i * c;
    for (int64_t j = 0; j < c; ++j) {
      dxi[j] = rs[i] * (dyi[j] * (ws ? ws[j] : T(1)) - xi[j] * rs[i] * mean_dot);
    }
  }
  if (dw != nullptr) {
    T* dws = dw->data<T>();
#pragma omp parallel for
    for (int64_t j = 0; j < c; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < n; ++i) acc += double(dys[i * c + j]) * xs[i * c + j] * rs[i];
      dws[j] += static_cast<T>(acc);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RmsNormForward(const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd) {
  LRKV_CPU_FLOAT_DISPATCH(x.dtype(), Forward, x, w, eps, y, rstd);
}
absl::Status RmsNormBackward(const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd,
                             Tensor& dx, Tensor* dw) {
  LRKV_CPU_FLOAT_DISPATCH(x.dtype(), Backward, dy, x, w, rstd, dx, dw);
}

}  // namespace lrkv::cpu
