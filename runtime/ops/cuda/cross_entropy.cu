// Cross-entropy pieces on CUDA: a block per row for the row maximum and the partial sums (exp in
// Acc<T>, the sum in double as on the CPU), a thread per logit for the backward. Targets may be a
// host or a device tensor. logits, dlogits (N, V): T; max, lse (N): Acc<T>, so a bf16 row's
// statistics keep fp32; sums (N, 2): double.
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/cuda/cross_entropy.cuh"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv::cuda {
namespace {

template <typename T>
absl::Status RowMax(const Tensor& logits, Tensor& max) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  if (n == 0) return absl::OkStatus();
  cross_entropy::RowMaxKernel<<<static_cast<unsigned>(n), RowThreads(v), 0, CurrentStream()>>>(logits.data<T>(),
                                                                                               max.data<Acc<T>>(), v);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status PartialSums(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& max,
                         Tensor& sums) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  if (n == 0) return absl::OkStatus();
  LRKV_REQUIRE(v > 0, "CrossEntropyPartialSums: logits have no columns");
  LRKV_TRY_ASSIGN(Tensor tgt, OnDevice(targets));
  cross_entropy::PartialSumsKernel<<<static_cast<unsigned>(n), RowThreads(v), 0, CurrentStream()>>>(
      logits.data<T>(), tgt.data<int32_t>(), col_begin, max.data<Acc<T>>(), sums.data<double>(), v);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& lse, double scale,
                      Tensor& dlogits) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  if (n * v == 0) return absl::OkStatus();
  LRKV_TRY_ASSIGN(Tensor tgt, OnDevice(targets));
  cross_entropy::BackwardKernel<<<GridFor(n * v), kThreads, 0, CurrentStream()>>>(
      logits.data<T>(), tgt.data<int32_t>(), col_begin, lse.data<Acc<T>>(), scale, dlogits.data<T>(), n, v);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status LogitRowMax(const Tensor& logits, Tensor& max) {
  LRKV_CUDA_FLOAT_DISPATCH(logits.dtype(), RowMax, logits, max);
}
absl::Status CrossEntropyPartialSums(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& max,
                                     Tensor& sums) {
  LRKV_CUDA_FLOAT_DISPATCH(logits.dtype(), PartialSums, logits, targets, col_begin, max, sums);
}
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& lse,
                                  double scale, Tensor& dlogits) {
  LRKV_CUDA_FLOAT_DISPATCH(logits.dtype(), Backward, logits, targets, col_begin, lse, scale, dlogits);
}

}  // namespace lrkv::cuda
