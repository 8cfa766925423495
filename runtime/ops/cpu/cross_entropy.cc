#include <algorithm>
#include <cmath>

#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/dispatch.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status Forward(const Tensor& logits, const Tensor& targets, Tensor& lse, double* loss_sum) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  const T* z = logits.data<T>();
  const int32_t* tgt = targets.data<int32_t>();
  T* l = lse.data<T>();
  for (int64_t i = 0; i < n; ++i) {
    if (tgt[i] < 0 || tgt[i] >= v) {
      return absl::OutOfRangeError(absl::StrCat("cross-entropy: target ", tgt[i], " at row ", i,
                                                " outside vocabulary [0, ", v, ")"));
    }
  }
  double total = 0;
#pragma omp parallel for reduction(+ : total)
  for (int64_t i = 0; i < n; ++i) {
    const T* zi = z + i * v;
    const T m = *std::max_element(zi, zi + v);
    // exp in the tensor's precision (vectorisable); the sum in double.
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < v; ++j) s += std::exp(zi[j] - m);
    const double row_lse = m + std::log(s);
    l[i] = static_cast<T>(row_lse);
    total += row_lse - zi[tgt[i]];
  }
  *loss_sum = total;
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, double scale,
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
    dz[i * v + tgt[i]] -= s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CrossEntropyForward(const Tensor& logits, const Tensor& targets, Tensor& lse, double* loss_sum) {
  LRKV_CPU_FLOAT_DISPATCH(logits.dtype(), Forward, logits, targets, lse, loss_sum);
}
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, const Tensor& lse, double scale,
                                  Tensor& dlogits) {
  LRKV_CPU_FLOAT_DISPATCH(logits.dtype(), Backward, logits, targets, lse, scale, dlogits);
}

}  // namespace lrkv::cpu
