#include "runtime/ops/add.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status Add(const Tensor& a, const Tensor& b, Tensor& out) {
  LRKV_TRY(CheckSameDeviceAndDType("Add", {&a, &b, &out}));
  LRKV_TRY(CheckShape("Add", "b", b, a.shape()));
  LRKV_TRY(CheckShape("Add", "out", out, a.shape()));
  return LRKV_RUN_KERNEL(out.device(), add, a, b, out);
}

}  // namespace lrkv
