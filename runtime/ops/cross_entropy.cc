#include "runtime/ops/cross_entropy.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
absl::Status CheckRows(const char* op, const Tensor& logits, const char* what, const Tensor& per_row) {
  LRKV_REQUIRE(logits.rank() == 2, op, ": logits must be (N, V), got ", logits.DebugString());
  LRKV_TRY(CheckShape(op, what, per_row, {logits.dim(0)}));
  LRKV_TRY(CheckDType(op, what, per_row, AccumDType(logits.dtype())));
  LRKV_REQUIRE(per_row.device() == logits.device(), op, ": ", what, " on ", DeviceName(per_row.device()));
  return absl::OkStatus();
}
absl::Status CheckTargets(const char* op, const Tensor& logits, const Tensor& targets) {
  LRKV_TRY(CheckDType(op, "targets", targets, DType::kI32));
  LRKV_REQUIRE(targets.numel() == logits.dim(0), op, ": ", targets.numel(), " targets for ", logits.dim(0), " rows");
  return absl::OkStatus();
}
}  // namespace

absl::Status LogitRowMax(const Tensor& logits, Tensor& max) {
  LRKV_TRY(CheckRows("LogitRowMax", logits, "max", max));
  LRKV_REQUIRE(logits.dim(1) > 0, "LogitRowMax: logits have no columns");
  return LRKV_RUN_KERNEL(logits.device(), logit_row_max, logits, max);
}

absl::Status CrossEntropyPartialSums(const Tensor& logits, const Tensor& targets, int64_t col_begin,
                                     const Tensor& max, Tensor& sums) {
  LRKV_TRY(CheckRows("CrossEntropyPartialSums", logits, "max", max));
  LRKV_TRY(CheckTargets("CrossEntropyPartialSums", logits, targets));
  LRKV_TRY(CheckDType("CrossEntropyPartialSums", "sums", sums, DType::kF64));
  LRKV_TRY(CheckShape("CrossEntropyPartialSums", "sums", sums, {logits.dim(0), 2}));
  return LRKV_RUN_KERNEL(logits.device(), cross_entropy_partial_sums, logits, targets, col_begin, max, sums);
}

absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& lse,
                                  double scale, Tensor& dlogits) {
  LRKV_TRY(CheckRows("CrossEntropyBackward", logits, "lse", lse));
  LRKV_TRY(CheckTargets("CrossEntropyBackward", logits, targets));
  LRKV_TRY(CheckShape("CrossEntropyBackward", "dlogits", dlogits, logits.shape()));
  LRKV_TRY(CheckSameDeviceAndDType("CrossEntropyBackward", {&logits, &dlogits}));
  return LRKV_RUN_KERNEL(logits.device(), cross_entropy_backward, logits, targets, col_begin, lse, scale, dlogits);
}

}  // namespace lrkv
