#include "runtime/ops/cross_entropy.h"

#include "runtime/ops/check.h"
#include "runtime/ops/dispatch.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
absl::Status CheckXent(const char* op, const Tensor& logits, const Tensor& targets, const Tensor& lse) {
  LRKV_REQUIRE(logits.rank() == 2, op, ": logits must be (N, V), got ", logits.DebugString());
  LRKV_TRY(CheckDType(op, "targets", targets, DType::kI32));
  LRKV_REQUIRE(targets.numel() == logits.dim(0), op, ": ", targets.numel(), " targets for ", logits.dim(0),
               " rows");
  LRKV_TRY(CheckShape(op, "lse", lse, {logits.dim(0)}));
  return CheckSameDeviceAndDType(op, {&logits, &lse});
}
}  // namespace

absl::Status CrossEntropyForward(const Tensor& logits, const Tensor& targets, Tensor& lse, double* loss_sum) {
  LRKV_TRY(CheckXent("CrossEntropyForward", logits, targets, lse));
  LRKV_DISPATCH(logits.device(), CrossEntropyForward, logits, targets, lse, loss_sum);
}

absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, const Tensor& lse, double scale,
                                  Tensor& dlogits) {
  LRKV_TRY(CheckXent("CrossEntropyBackward", logits, targets, lse));
  LRKV_TRY(CheckShape("CrossEntropyBackward", "dlogits", dlogits, logits.shape()));
  LRKV_DISPATCH(logits.device(), CrossEntropyBackward, logits, targets, lse, scale, dlogits);
}

}  // namespace lrkv
