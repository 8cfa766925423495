// Softmax cross-entropy over logits whose vocabulary columns are split over the tensor-parallel
// group (the output of a vocabulary-parallel LM head), without ever gathering the full logits:
//   m   = all-reduce max of each rank's row maxima                  (N values)
//   s,z = all-reduce sum of {sum exp(logits - m), target logit}      (N x 2 values, f64)
//   lse = m + log s;  loss_i = lse_i - z_i
// The backward pass needs no communication: each rank writes its columns of
// softmax - onehot (runtime/ops/cross_entropy.h, CrossEntropyBackward with col_begin).
//   logits: (N, V / tp), columns [col_begin, col_begin + V / tp)   targets: i32 (N) in [0, vocab)
//   lse: (N), written, kept for backward
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace lrkv {

// Returns the sum over the N rows of the loss (the same on every rank of the group). `tp` may be null.
absl::StatusOr<double> VocabParallelCrossEntropyForward(Communicator* tp, const Tensor& logits, const Tensor& targets,
                                                        int64_t col_begin, int64_t vocab, Tensor& lse);

}  // namespace lrkv
