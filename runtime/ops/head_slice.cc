#include "runtime/ops/head_slice.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
absl::Status CheckSlice(const char* op, const Tensor& src, int64_t offset, const Tensor& dst) {
  LRKV_REQUIRE(src.rank() == 3 && dst.rank() == 3, op, ": src must be (N, Hs, Ds) and dst (N, H, Dd), got ",
               src.DebugString(), " and ", dst.DebugString());
  LRKV_REQUIRE(src.dim(0) == dst.dim(0) && (src.dim(1) == 1 || src.dim(1) == dst.dim(1)), op, ": ",
               src.DebugString(), " does not map onto the heads of ", dst.DebugString());
  LRKV_REQUIRE(offset >= 0 && offset + src.dim(2) <= dst.dim(2), op, ": slice [", offset, ", ",
               offset + src.dim(2), ") outside head width ", dst.dim(2));
  return CheckSameDeviceAndDType(op, {&src, &dst});
}
}  // namespace

absl::Status CopyToHeadSlice(const Tensor& src, int64_t offset, Tensor& dst) {
  LRKV_TRY(CheckSlice("CopyToHeadSlice", src, offset, dst));
  return LRKV_RUN_KERNEL(dst.device(), copy_to_head_slice, src, offset, dst);
}

absl::Status ReduceFromHeadSlice(const Tensor& ddst, int64_t offset, Tensor& dsrc) {
  LRKV_TRY(CheckSlice("ReduceFromHeadSlice", dsrc, offset, ddst));
  return LRKV_RUN_KERNEL(ddst.device(), reduce_from_head_slice, ddst, offset, dsrc);
}

}  // namespace lrkv
