// The ops the optimizer needs on whatever device the parameters live: the squared norm of a gradient
// (for global-norm clipping), in-place scaling, and one fused AdamW update.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// *out = sum of x^2, accumulated in double.
absl::Status SumSquares(const Tensor& x, double* out);
// x *= factor.
absl::Status Scale(Tensor& x, double factor);

struct AdamWStep {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based, for bias correction
};
// Decoupled weight decay (Loshchilov & Hutter): p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p).
// param, grad, m, v share one shape; m and v are updated in place.
absl::Status AdamWUpdate(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s);

}  // namespace lrkv
