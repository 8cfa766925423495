// LayerNorm over the last dimension: y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps).
// x, y: (N, C); w, b: (C); mean, rstd: (N) saved for backward.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status LayerNormForward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                              Tensor& mean, Tensor& rstd);
// dx written; dw, db (C) accumulated.
absl::Status LayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                               const Tensor& rstd, Tensor& dx, Tensor& dw, Tensor& db);

}  // namespace lrkv
