#include "runtime/ops/embedding.h"

#include "runtime/ops/check.h"
#include "runtime/ops/dispatch.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out) {
  LRKV_TRY(CheckDType("EmbeddingForward", "tokens", tokens, DType::kI32));
  LRKV_REQUIRE(table.rank() == 2, "EmbeddingForward: table must be (V, d), got ", table.DebugString());
  LRKV_TRY(CheckShape("EmbeddingForward", "out", out, {tokens.numel(), table.dim(1)}));
  LRKV_TRY(CheckSameDeviceAndDType("EmbeddingForward", {&table, &out}));
  LRKV_DISPATCH(out.device(), EmbeddingForward, tokens, table, out);
}

absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable) {
  LRKV_TRY(CheckDType("EmbeddingBackward", "tokens", tokens, DType::kI32));
  LRKV_REQUIRE(dtable.rank() == 2, "EmbeddingBackward: dtable must be (V, d)");
  LRKV_TRY(CheckShape("EmbeddingBackward", "dout", dout, {tokens.numel(), dtable.dim(1)}));
  LRKV_TRY(CheckSameDeviceAndDType("EmbeddingBackward", {&dtable, &dout}));
  LRKV_DISPATCH(dtable.device(), EmbeddingBackward, tokens, dout, dtable);
}

}  // namespace lrkv
