// Embedding lookup on CUDA. Token ids may be a host tensor (as the launcher reads them there) or a
// device tensor; host ids are uploaded first. Backward adds dout (N, d: T) into dtable (V, d), whose
// dtype is T or Acc<T> (an fp32 gradient of a bf16 table), deterministically: the positions are
// grouped by vocabulary row on the host (a counting sort, in position order), and one thread per
// (touched row, column) sums its row's positions in that order. No atomics, so a repeated token's
// gradient has the same bits on every run, as the CPU's.
#include <algorithm>
#include <vector>

#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/embedding.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/embedding.h"

namespace lrkv::cuda {
namespace {

absl::StatusOr<Tensor> Upload(const std::vector<int32_t>& v) {
  LRKV_TRY_ASSIGN(Tensor host, Tensor::Empty({int64_t(v.size())}, DType::kI32));
  std::copy(v.begin(), v.end(), host.data<int32_t>());
  return OnDevice(host);
}

template <typename T>
absl::Status Forward(const Tensor& tokens, const Tensor& table, Tensor& out, int64_t row_begin) {
  const int64_t n = tokens.numel(), rows = table.dim(0), d = table.dim(1);
  if (n * d == 0) return absl::OkStatus();
  LRKV_TRY_ASSIGN(Tensor tok, OnDevice(tokens));
  embedding::ForwardKernel<<<GridFor(n * d), kThreads, 0, CurrentStream()>>>(tok.data<int32_t>(), table.data<T>(),
                                                                             out.data<T>(), n, rows, d, row_begin);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& tokens, const Tensor& dout, Tensor& dtable, int64_t row_begin) {
  const int64_t n = tokens.numel(), rows = dtable.dim(0), d = dtable.dim(1);
  if (n * d == 0) return absl::OkStatus();
  Tensor host = tokens;
  if (tokens.device() != Device::kCpu) {
    LRKV_TRY_ASSIGN(host, tokens.To(Device::kCpu, DType::kI32));
  }
  const embedding::Segments seg = embedding::GroupByRow(host.data<int32_t>(), n, rows, row_begin);
  const int64_t segments = int64_t(seg.rows.size());
  if (segments == 0) return absl::OkStatus();
  LRKV_TRY_ASSIGN(const Tensor order, Upload(seg.order));
  LRKV_TRY_ASSIGN(const Tensor begin, Upload(seg.begin));
  LRKV_TRY_ASSIGN(const Tensor touched, Upload(seg.rows));
  const int32_t *o = order.data<int32_t>(), *b = begin.data<int32_t>(), *r = touched.data<int32_t>();
  if (dtable.dtype() == DTypeOf<Acc<T>>::value) {
    embedding::BackwardKernel<<<GridFor(segments * d), kThreads, 0, CurrentStream()>>>(
        o, b, r, dout.data<T>(), dtable.data<Acc<T>>(), segments, d);
  } else {
    embedding::BackwardKernel<<<GridFor(segments * d), kThreads, 0, CurrentStream()>>>(o, b, r, dout.data<T>(),
                                                                                       dtable.data<T>(), segments, d);
  }
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out, int64_t row_begin) {
  LRKV_CUDA_FLOAT_DISPATCH(table.dtype(), Forward, tokens, table, out, row_begin);
}
absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable, int64_t row_begin) {
  LRKV_CUDA_FLOAT_DISPATCH(dout.dtype(), Backward, tokens, dout, dtable, row_begin);
}

}  // namespace lrkv::cuda
