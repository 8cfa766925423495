#include "runtime/ops/activation.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
absl::Status SameShapes(const char* op, std::initializer_list<const Tensor*> ts) {
  LRKV_TRY(CheckSameDeviceAndDType(op, ts));
  for (const Tensor* t : ts) LRKV_TRY(CheckShape(op, "argument", *t, (*ts.begin())->shape()));
  return absl::OkStatus();
}
}  // namespace

absl::Status ActivationForward(Activation act, const Tensor& x, Tensor& y) {
  LRKV_TRY(SameShapes("ActivationForward", {&x, &y}));
  return LRKV_RUN_KERNEL(x.device(), activation_forward, act, x, y);
}
absl::Status ActivationBackward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx) {
  LRKV_TRY(SameShapes("ActivationBackward", {&dy, &x, &dx}));
  return LRKV_RUN_KERNEL(x.device(), activation_backward, act, dy, x, dx);
}
absl::Status SwiGluForward(const Tensor& gate, const Tensor& up, Tensor& y) {
  LRKV_TRY(SameShapes("SwiGluForward", {&gate, &up, &y}));
  return LRKV_RUN_KERNEL(y.device(), swiglu_forward, gate, up, y);
}
absl::Status SwiGluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  LRKV_TRY(SameShapes("SwiGluBackward", {&dy, &gate, &up, &dgate, &dup}));
  return LRKV_RUN_KERNEL(dy.device(), swiglu_backward, dy, gate, up, dgate, dup);
}

}  // namespace lrkv
