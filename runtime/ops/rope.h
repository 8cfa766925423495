// Rotary position embedding on the last `rope_dims` entries of each head vector, rotate-half pairing:
// for i < R/2, (a, b) = (x[i], x[i+R/2]) of the rotated sub-vector, angle = t * theta^(-2i/R),
// out = (a cos - b sin, a sin + b cos). The first D - R entries pass through (MLA's "nope" part).
// x, y: (B, T, H, D); positions are first_position .. first_position + T - 1 (decoding rotates a
// new token at its place in the sequence). y may alias x.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status RopeForward(const Tensor& x, int64_t rope_dims, double theta, Tensor& y, int64_t first_position = 0);
// The rotation is orthogonal, so backward rotates dy by the negative angle. dx may alias dy.
absl::Status RopeBackward(const Tensor& dy, int64_t rope_dims, double theta, Tensor& dx);

}  // namespace lrkv
