// RMSNorm over the last dimension: y = x / sqrt(mean(x^2) + eps) * w.
// x, y: (N, C) (any leading shape); w: (C), or null for a weight-free norm; rstd: (N) saved for backward.
// QK-norm is this op with w = null, applied per head over the head dimension.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status RmsNormForward(const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd);
// dx written; dw (C) += when w is given.
absl::Status RmsNormBackward(const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd,
                             Tensor& dx, Tensor* dw);

}  // namespace lrkv
