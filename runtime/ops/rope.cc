#include "runtime/ops/rope.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
absl::Status CheckRope(const char* op, const Tensor& x, int64_t rope_dims, const Tensor& y) {
  LRKV_REQUIRE(x.rank() == 4, op, ": x must be (B, T, H, D), got ", x.DebugString());
  LRKV_REQUIRE(rope_dims >= 0 && rope_dims % 2 == 0 && rope_dims <= x.dim(3), op, ": rope_dims ", rope_dims,
               " must be even and at most the head dimension ", x.dim(3));
  LRKV_TRY(CheckShape(op, "output", y, x.shape()));
  return CheckSameDeviceAndDType(op, {&x, &y});
}
}  // namespace

absl::Status RopeForward(const Tensor& x, int64_t rope_dims, double theta, Tensor& y, int64_t first_position) {
  LRKV_TRY(CheckRope("RopeForward", x, rope_dims, y));
  LRKV_REQUIRE(first_position >= 0, "RopeForward: first position ", first_position, " is negative");
  return LRKV_RUN_KERNEL(x.device(), rope, x, rope_dims, theta, +1.0, first_position, y);
}

absl::Status RopeBackward(const Tensor& dy, int64_t rope_dims, double theta, Tensor& dx) {
  LRKV_TRY(CheckRope("RopeBackward", dy, rope_dims, dx));
  return LRKV_RUN_KERNEL(dy.device(), rope, dy, rope_dims, theta, -1.0, 0, dx);
}

}  // namespace lrkv
