// Global-norm gradient clipping over all parameters.
#pragma once

#include "absl/status/statusor.h"
#include "model/parameter.h"

namespace lrkv {

// The factor that brings a gradient of L2 norm `norm` down to `max_norm` (1 when it is already
// within, or when max_norm is 0: clipping disabled).
double ClipScale(double norm, double max_norm);

// The L2 norm of all gradients together.
absl::StatusOr<double> GlobalGradNorm(const ParameterSet& params);
// Scales every gradient by max_norm / norm when norm > max_norm (max_norm 0 disables). Returns the
// norm before clipping.
absl::StatusOr<double> ClipGradNorm(ParameterSet& params, double max_norm);

}  // namespace lrkv
