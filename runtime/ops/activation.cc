#include "runtime/ops/activation.h"

#include "runtime/ops/check.h"
#include "runtime/ops/dispatch.h"
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
  LRKV_DISPATCH(x.device(), ActivationForward, act, x, y);
}
absl::Status ActivationBackward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx) {
  LRKV_TRY(SameShapes("ActivationBackward", {&dy, &x, &dx}));
  LRKV_DISPATCH(x.device(), ActivationBackward, act, dy, x, dx);
}
absl::Status SwiGluForward(const Tensor& gate, const Tensor& up, Tensor& y) {
  LRKV_TRY(SameShapes("SwiGluForward", {&gate, &up, &y}));
  LRKV_DISPATCH(y.device(), SwiGluForward, gate, up, y);
}
absl::Status SwiGluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  LRKV_TRY(SameShapes("SwiGluBackward", {&dy, &gate, &up, &dgate, &dup}));
  LRKV_DISPATCH(dy.device(), SwiGluBackward, dy, gate, up, dgate, dup);
}

}  // namespace lrkv
