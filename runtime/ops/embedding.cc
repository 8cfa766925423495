#include "runtime/ops/embedding.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out, int64_t row_begin,
                              int64_t vocab) {
  LRKV_TRY(CheckDType("EmbeddingForward", "tokens", tokens, DType::kI32));
  LRKV_REQUIRE(table.rank() == 2, "EmbeddingForward: table must be (V, d), got ", table.DebugString());
  LRKV_TRY(CheckShape("EmbeddingForward", "out", out, {tokens.numel(), table.dim(1)}));
  LRKV_TRY(CheckSameDeviceAndDType("EmbeddingForward", {&table, &out}));
  if (vocab == 0) vocab = table.dim(0);
  LRKV_REQUIRE(row_begin >= 0 && row_begin + table.dim(0) <= vocab, "EmbeddingForward: rows [", row_begin, ", ",
               row_begin + table.dim(0), ") outside a vocabulary of ", vocab);
  const int32_t* tok = tokens.data<int32_t>();  // token ids live on the host
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    if (tok[i] < 0 || tok[i] >= vocab) {
      return absl::OutOfRangeError(
          absl::StrCat("embedding: token id ", tok[i], " at position ", i, " outside vocabulary [0, ", vocab, ")"));
    }
  }
  return LRKV_RUN_KERNEL(out.device(), embedding_forward, tokens, table, out, row_begin);
}

absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable, int64_t row_begin) {
  LRKV_TRY(CheckDType("EmbeddingBackward", "tokens", tokens, DType::kI32));
  LRKV_REQUIRE(dtable.rank() == 2, "EmbeddingBackward: dtable must be (V, d)");
  LRKV_TRY(CheckShape("EmbeddingBackward", "dout", dout, {tokens.numel(), dtable.dim(1)}));
  LRKV_REQUIRE(dtable.device() == dout.device(), "EmbeddingBackward: dtable and dout on different devices");
  LRKV_TRY(CheckAccumulatorDType("EmbeddingBackward", "dtable", dtable, dout.dtype()));
  return LRKV_RUN_KERNEL(dtable.device(), embedding_backward, tokens, dout, dtable, row_begin);
}

}  // namespace lrkv
