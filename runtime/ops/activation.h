// Pointwise activations of the MLP, each with its backward:
//   GELU (tanh approximation), ReLU^2 (relu(x)^2), SwiGLU (silu(gate) * up).
// All tensors share one shape; outputs are written.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

enum class Activation { kGelu, kReluSquared };

absl::Status ActivationForward(Activation act, const Tensor& x, Tensor& y);
absl::Status ActivationBackward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx);
absl::Status SwiGluForward(const Tensor& gate, const Tensor& up, Tensor& y);
absl::Status SwiGluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);

}  // namespace lrkv
