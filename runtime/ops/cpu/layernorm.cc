#include <cmath>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/layernorm.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status Forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                     Tensor& rstd) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  const T *xs = x.data<T>(), *ws = w.data<T>(), *bs = b.data<T>();
  T *ys = y.data<T>(), *ms = mean.data<T>(), *rs = rstd.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const T* xi = xs + i * c;
    double m = 0, v = 0;
    for (int64_t j = 0; j < c; ++j) m += xi[j];
    m /= c;
    for (int64_t j = 0; j < c; ++j) v += (xi[j] - m) * (xi[j] - m);
    const double r = 1.0 / std::sqrt(v / c + eps);
    ms[i] = static_cast<T>(m);
    rs[i] = static_cast<T>(r);
    for (int64_t j = 0; j < c; ++j) ys[i * c + j] = static_cast<T>((xi[j] - m) * r) * ws[j] + bs[j];
  }
  return absl::OkStatus();
}

// xhat = (x - mean) r, g = dy * w: dx = r (g - mean(g) - xhat mean(g xhat)); dw += dy xhat; db += dy.
template <typename T>
absl::Status Backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                      const Tensor& rstd, Tensor& dx, Tensor& dw, Tensor& db) {
  const int64_t c = x.dim(-1), n = c == 0 ? 0 : x.numel() / c;
  const T *xs = x.data<T>(), *ws = w.data<T>(), *dys = dy.data<T>(), *ms = mean.data<T>(),
          *rs = rstd.data<T>();
  T *dxs = dx.data<T>(), *dws = dw.data<T>(), *dbs = db.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    double g_mean = 0, gx_mean = 0;
    for (int64_t j = 0; j < c; ++j) {
      const double g = double(dys[i * c + j]) * ws[j];
      g_mean += g;
      gx_mean += g * (xs[i * c + j] - ms[i]) * rs[i];
    }
    g_mean /= c;
    gx_mean /= c;
    for (int64_t j = 0; j < c; ++j) {
      const double xhat = (xs[i * c + j] - ms[i]) * rs[i];
      dxs[i * c + j] = static_cast<T>(rs[i] * (double(dys[i * c + j]) * ws[j] - g_mean - xhat * gx_mean));
    }
  }
#pragma omp parallel for
  for (int64_t j = 0; j < c; ++j) {
    double aw = 0, ab = 0;
    for (int64_t i = 0; i < n; ++i) {
      aw += double(dys[i * c + j]) * (xs[i * c + j] - ms[i]) * rs[i];
      ab += dys[i * c + j];
    }
    dws[j] += static_cast<T>(aw);
    dbs[j] += static_cast<T>(ab);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LayerNormForward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                              Tensor& mean, Tensor& rstd) {
  LRKV_CPU_FLOAT_DISPATCH(x.dtype(), Forward, x, w, b, eps, y, mean, rstd);
}
absl::Status LayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                               const Tensor& rstd, Tensor& dx, Tensor& dw, Tensor& db) {
  LRKV_CPU_FLOAT_DISPATCH(x.dtype(), Backward, dy, x, w, mean, rstd, dx, dw, db);
}

}  // namespace lrkv::cpu
