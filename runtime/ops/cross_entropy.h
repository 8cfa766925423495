// Softmax cross-entropy over the vocabulary, one row per token.
// logits: (N, V); targets: i32 (N); lse: (N) log-sum-exp per row, saved for backward.
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// *loss_sum = sum over rows of (lse - logit[target]), accumulated in double.
absl::Status CrossEntropyForward(const Tensor& logits, const Tensor& targets, Tensor& lse, double* loss_sum);
// dlogits = (softmax(logits) - onehot(target)) * scale, written. scale is d(loss)/d(row loss),
// e.g. 1/N for a mean over N rows.
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, const Tensor& lse, double scale,
                                  Tensor& dlogits);

namespace cpu {
absl::Status CrossEntropyForward(const Tensor& logits, const Tensor& targets, Tensor& lse, double* loss_sum);
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, const Tensor& lse, double scale,
                                  Tensor& dlogits);
}  // namespace cpu
namespace cuda {
absl::Status CrossEntropyForward(const Tensor& logits, const Tensor& targets, Tensor& lse, double* loss_sum);
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, const Tensor& lse, double scale,
                                  Tensor& dlogits);
}  // namespace cuda

}  // namespace lrkv
