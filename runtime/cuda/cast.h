// Element type conversion between device tensors (f32, f64, bf16), on the device.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv::cuda {

// dst (same element count, on the CUDA device) = src converted to dst's dtype.
absl::Status Cast(const Tensor& src, Tensor& dst);

}  // namespace lrkv::cuda
