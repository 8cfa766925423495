#include "runtime/ops/cast.h"

#include <initializer_list>

#include "runtime/ops/backend.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status Cast(const Tensor& src, Tensor& dst) {
  LRKV_REQUIRE(src.defined() && dst.defined() && src.device() == dst.device() && src.numel() == dst.numel(),
               "Cast: ", src.DebugString(), " -> ", dst.DebugString(), ": same element count on one device");
  for (const Tensor* t : std::initializer_list<const Tensor*>{&src, &dst}) {
    LRKV_REQUIRE(t->dtype() != DType::kI32, "Cast: ", t->DebugString(), " is not floating");
  }
  return LRKV_RUN_KERNEL(src.device(), cast, src, dst);
}

}  // namespace lrkv
