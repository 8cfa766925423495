#include "runtime/ops/add.h"

#include "runtime/ops/check.h"
#include "runtime/ops/dispatch.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status Add(const Tensor& a, const Tensor& b, Tensor& out) {
  LRKV_TRY(CheckSameDeviceAndDType("Add", {&a, &b, &out}));
  LRKV_TRY(CheckShape("Add", "b", b, a.shape()));
  LRKV_TRY(CheckShape("Add", "out", out, a.shape()));
  LRKV_DISPATCH(out.device(), Add, a, b, out);
}

}  // namespace lrkv
