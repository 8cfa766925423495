// Softmax cross-entropy over the vocabulary, one row per token, in pieces that also work when the
// vocabulary (the logit columns) is split over tensor-parallel ranks: this rank holds columns
// [col_begin, col_begin + V_local) of every row. The loss needs the row maximum and the sum of
// exponentials over all columns, so the forward pass is two local steps around two reductions
// (parallel/vocab_parallel_cross_entropy.h composes them; with one rank the reductions vanish).
//   logits: (N, V_local)   targets: i32 (N), global ids   max, lse: (N)   sums: f64 (N, 2)
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// max[i] = max_j logits[i, j] over this rank's columns.
absl::Status LogitRowMax(const Tensor& logits, Tensor& max);
// With the global row maximum m: sums[i] = {sum_j exp(logits[i, j] - m[i]) over this rank's
// columns, logits[i, target_i - col_begin] when this rank holds the target's column, else 0}.
absl::Status CrossEntropyPartialSums(const Tensor& logits, const Tensor& targets, int64_t col_begin,
                                     const Tensor& max, Tensor& sums);
// dlogits = (exp(logits - lse) - onehot(target - col_begin)) * scale, written. scale is
// d(objective)/d(row loss), e.g. 1/N for a mean over N rows.
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& lse,
                                  double scale, Tensor& dlogits);

}  // namespace lrkv
