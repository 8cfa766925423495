// Linear layer without bias, in the math convention: y = x @ w with w stored (in, out).
// A composite op: both passes are GEMMs, so it runs on any backend that has Gemm.
#pragma once

#include "absl/status/status.h"
#include "runtime/flop_counter.h"
#include "runtime/tensor.h"

namespace lrkv {

// x: (N, in); w: (in, out); y: (N, out), written. x and y may have any shapes of N * in and
// N * out elements, e.g. (B, T, d) in and (B, T, H, d_h) out.
absl::Status LinearForward(const Tensor& x, const Tensor& w, Tensor& y, FlopCategory category);

// dx (N, in) = dy @ w^T, written (or added to dx when accumulate_dx; skipped when dx is null);
// dw (in, out) += x^T @ dy (parameter gradients always accumulate).
absl::Status LinearBackward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor* dx, Tensor& dw,
                            FlopCategory category, bool accumulate_dx = false);

}  // namespace lrkv
