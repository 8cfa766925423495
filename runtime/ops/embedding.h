// Token embedding lookup. tokens: i32 (N); table: (V_local, d); out: (N, d).
// The table may be one block of a vocabulary split over tensor-parallel ranks: it holds rows
// [row_begin, row_begin + V_local) of a vocabulary of `vocab` ids (vocab 0: V_local, the whole
// table). Tokens outside the block give zero rows forward and nothing backward; summing the
// ranks' outputs gives the full lookup.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// Fails with OutOfRange naming the token when an id is outside [0, vocab).
absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out, int64_t row_begin = 0,
                              int64_t vocab = 0);
// dtable (V_local, d) += scatter of dout (N, d) by token (the block's tokens only).
absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable, int64_t row_begin = 0);

}  // namespace lrkv
