#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cpu/rope_angles.h"
#include "runtime/ops/rope.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status Kernel(const Tensor& x, int64_t rope_dims, double theta, double direction, int64_t first_position,
                    Tensor& y) {
  const int64_t b = x.dim(0), t = x.dim(1), h = x.dim(2), d = x.dim(3), half = rope_dims / 2;
  const int64_t first = d - rope_dims;  // index of the first rotated entry
  const std::shared_ptr<const RopeTable<T>> angles = RopeAngles<T>(theta, rope_dims, first_position + t);
  const T* cos_t = angles->cos.data() + first_position * half;
  const T* sin_t = angles->sin.data() + first_position * half;
  const T sign = static_cast<T>(direction);  // backward rotates by the opposite angle
  const T* xs = x.data<T>();
  T* ys = y.data<T>();
#pragma omp parallel for collapse(2)
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t p = 0; p < t; ++p)
      for (int64_t hi = 0; hi < h; ++hi) {
        const T* xv = xs + ((bi * t + p) * h + hi) * d;
        T* yv = ys + ((bi * t + p) * h + hi) * d;
        for (int64_t j = 0; j < first; ++j) yv[j] = xv[j];
        const T* c = cos_t + p * half;
        const T* s = sin_t + p * half;
        for (int64_t i = 0; i < half; ++i) {
          const T a = xv[first + i], bb = xv[first + half + i], si = sign * s[i];
          yv[first + i] = a * c[i] - bb * si;
          yv[first + half + i] = a * si + bb * c[i];
        }
      }
  return absl::OkStatus();
}

}  // namespace

// cos and sin of p * theta^(-2i / rope_dims) for positions p < size and i < rope_dims / 2, computed
// in double (large positions would lose accuracy in float) and kept: decoding rotates every cached
// key at every step, and recomputing 16k positions' angles each time cost more than the rotation.
// A table only grows (to twice its size, so a context one longer each token rarely rebuilds it); a
// call holds the one it read, so a later growth never changes it underneath.
template <typename T>
std::shared_ptr<const RopeTable<T>> RopeAngles(double theta, int64_t rope_dims, int64_t end_position) {
  static std::mutex mu;
  static std::map<std::pair<double, int64_t>, std::shared_ptr<const RopeTable<T>>> tables;
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<const RopeTable<T>>& table = tables[{theta, rope_dims}];
  if (table && table->positions >= end_position) return table;
  auto grown = std::make_shared<RopeTable<T>>();
  const int64_t half = rope_dims / 2;
  grown->positions = std::max<int64_t>(end_position, table ? 2 * table->positions : 0);
  grown->cos.resize(grown->positions * half);
  grown->sin.resize(grown->positions * half);
  std::vector<double> inverse_frequency(half);
  for (int64_t i = 0; i < half; ++i) inverse_frequency[i] = std::pow(theta, -2.0 * i / rope_dims);
#pragma omp parallel for
  for (int64_t p = 0; p < grown->positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(p) * inverse_frequency[i];
      grown->cos[p * half + i] = static_cast<T>(std::cos(angle));
      grown->sin[p * half + i] = static_cast<T>(std::sin(angle));
    }
  table = std::move(grown);
  return table;
}

template std::shared_ptr<const RopeTable<float>> RopeAngles<float>(double, int64_t, int64_t);
template std::shared_ptr<const RopeTable<double>> RopeAngles<double>(double, int64_t, int64_t);

absl::Status Rope(const Tensor& x, int64_t rope_dims, double theta, double direction, int64_t first_position,
                  Tensor& y) {
  LRKV_CPU_FLOAT_DISPATCH(x.dtype(), Kernel, x, rope_dims, theta, direction, first_position, y);
}

}  // namespace lrkv::cpu
