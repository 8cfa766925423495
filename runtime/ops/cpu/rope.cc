#include <cmath>
#include <vector>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/rope.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status Kernel(const Tensor& x, int64_t rope_dims, double theta, double direction, int64_t first_position,
                    Tensor& y) {
  const int64_t b = x.dim(0), t = x.dim(1), h = x.dim(2), d = x.dim(3), half = rope_dims / 2;
  const int64_t first = d - rope_dims;  // index of the first rotated entry
  // Angles in double: large positions would lose accuracy in float.
  std::vector<T> cos_t(t * half), sin_t(t * half);
  for (int64_t p = 0; p < t; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(first_position + p) * std::pow(theta, -2.0 * i / rope_dims);
      cos_t[p * half + i] = static_cast<T>(std::cos(angle));
      sin_t[p * half + i] = static_cast<T>(direction * std::sin(angle));
    }
  const T* xs = x.data<T>();
  T* ys = y.data<T>();
#pragma omp parallel for collapse(2)
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t p = 0; p < t; ++p)
      for (int64_t hi = 0; hi < h; ++hi) {
        const T* xv = xs + ((bi * t + p) * h + hi) * d;
        T* yv = ys + ((bi * t + p) * h + hi) * d;
        for (int64_t j = 0; j < first; ++j) yv[j] = xv[j];
        const T* c = &cos_t[p * half];
        const T* s = &sin_t[p * half];
        for (int64_t i = 0; i < half; ++i) {
          const T a = xv[first + i], bb = xv[first + half + i];
          yv[first + i] = a * c[i] - bb * s[i];
          yv[first + half + i] = a * s[i] + bb * c[i];
        }
      }
  return absl::OkStatus();
}

}  // namespace

absl::Status Rope(const Tensor& x, int64_t rope_dims, double theta, double direction, int64_t first_position,
                  Tensor& y) {
  LRKV_CPU_FLOAT_DISPATCH(x.dtype(), Kernel, x, rope_dims, theta, direction, first_position, y);
}

}  // namespace lrkv::cpu
