#include "parallel/vocab_parallel_cross_entropy.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "parallel/tensor_parallel.h"
#include "runtime/ops/cross_entropy.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<double> VocabParallelCrossEntropyForward(Communicator* tp, const Tensor& logits, const Tensor& targets,
                                                        int64_t col_begin, int64_t vocab, Tensor& lse) {
  const int64_t n = logits.dim(0);
  const int32_t* tgt = targets.data<int32_t>();  // targets live on the host
  for (int64_t i = 0; i < targets.numel(); ++i) {
    if (tgt[i] < 0 || tgt[i] >= vocab) {
      return absl::OutOfRangeError(
          absl::StrCat("cross-entropy: target ", tgt[i], " at row ", i, " outside vocabulary [0, ", vocab, ")"));
    }
  }
  LRKV_TRY_ASSIGN(Tensor max, Tensor::Empty({n}, AccumDType(logits.dtype()), logits.device()));
  LRKV_TRY(LogitRowMax(logits, max));
  if (TpSize(tp) > 1) LRKV_TRY(tp->AllReduce(max, ReduceOp::kMax));
  LRKV_TRY_ASSIGN(Tensor sums, Tensor::Empty({n, 2}, DType::kF64, logits.device()));
  LRKV_TRY(CrossEntropyPartialSums(logits, targets, col_begin, max, sums));
  LRKV_TRY(AllReduceOverTp(tp, sums));
  // Rows are few (tokens of one micro-batch) next to the logits: finish on the host.
  LRKV_TRY_ASSIGN(Tensor host_max, max.To(Device::kCpu, DType::kF64));
  LRKV_TRY_ASSIGN(Tensor host_sums, sums.To(Device::kCpu, DType::kF64));
  LRKV_TRY_ASSIGN(Tensor host_lse, Tensor::Empty({n}, DType::kF64));
  const double *m = host_max.data<double>(), *s = host_sums.data<double>();
  double* l = host_lse.data<double>();
  double loss_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    l[i] = m[i] + std::log(s[2 * i]);
    loss_sum += l[i] - s[2 * i + 1];
  }
  LRKV_TRY_ASSIGN(Tensor converted, host_lse.To(lse.device(), lse.dtype()));
  LRKV_TRY(lse.CopyFrom(converted));
  return loss_sum;
}

}  // namespace lrkv
