// Token embedding lookup. tokens: i32 (N); table: (V, d); out: (N, d).
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// Fails with OutOfRange naming the token when an id is outside [0, V).
absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out);
// dtable (V, d) += scatter of dout (N, d) by token.
absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable);

namespace cpu {
absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out);
absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable);
}  // namespace cpu
namespace cuda {
absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out);
absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable);
}  // namespace cuda

}  // namespace lrkv
