// Residual add: out = a + b, all the same shape; out may alias a or b.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status Add(const Tensor& a, const Tensor& b, Tensor& out);

}  // namespace lrkv
