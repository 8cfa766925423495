// Element type conversion between floating tensors (f32, f64, bf16) on one device: mixed
// precision's fp32 master weights -> bf16 compute copies, and the CPU kernels' bf16 staging.
// Narrowing to bf16 rounds to nearest even; NaN stays NaN.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// dst (same element count, same device) = src converted to dst's dtype.
absl::Status Cast(const Tensor& src, Tensor& dst);

}  // namespace lrkv
