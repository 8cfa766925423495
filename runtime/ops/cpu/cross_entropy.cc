#include <algorithm>
#include <cmath>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cross_entropy.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status RowMax(const Tensor& logits, Tensor& max) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  const T* z = logits.data<T>();
  T* m = max.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) m[i] = *std::max_element(z + i * v, z + (i + 1) * v);
  return absl::OkStatus();
}

template <typename T>
absl::Status PartialSums(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& max,
                         Tensor& sums) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  const T* z = logits.data<T>();
  const T* m = max.data<T>();
  const int32_t* tgt = targets.data<int32_t>();
  double* out = sums.data<double>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const T* zi = z + i * v;
    // exp in the tensor's precision (vectorisable); the sum in double.
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < v; ++j) s += std::exp(zi[j] - m[i]);
    const int64_t local = tgt[i] - col_begin;
    out[2 * i] = s;
    out[2 * i + 1] = local >= 0 && local < v ? double(zi[local]) : 0.0;
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& lse, double scale,
                      Tensor& dlogits) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  const T* z = logits.data<T>();
  const int32_t* tgt = targets.data<int32_t>();
  const T* l = lse.data<T>();
  T* dz = dlogits.data<T>();
  const T s = static_cast<T>(scale);
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < v; ++j) dz[i * v + j] = std::exp(z[i * v + j] - l[i]) * s;
    const int64_t local = tgt[i] - col_begin;
    if (local >= 0 && local < v) dz[i * v + local] -= s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LogitRowMax(const Tensor& logits, Tensor& max) {
  LRKV_CPU_FLOAT_DISPATCH(logits.dtype(), RowMax, logits, max);
}
absl::Status CrossEntropyPartialSums(const Tensor& logits, const Tensor& targets, int64_t col_begin,
                                     const Tensor& max, Tensor& sums) {
  LRKV_CPU_FLOAT_DISPATCH(logits.dtype(), PartialSums, logits, targets, col_begin, max, sums);
}
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& lse,
                                  double scale, Tensor& dlogits) {
  LRKV_CPU_FLOAT_DISPATCH(logits.dtype(), Backward, logits, targets, col_begin, lse, scale, dlogits);
}

}  // namespace lrkv::cpu
