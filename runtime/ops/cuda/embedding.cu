// Embedding lookup on CUDA. Token ids may be a host tensor (as the launcher reads them there) or a
// device tensor; host ids are uploaded first. Backward adds dout (N, d: T) into dtable (V, d), whose
// dtype is T or Acc<T> (an fp32 gradient of a bf16 table), deterministically: the positions are
// grouped by vocabulary row on the host (a counting sort, in position order), and one thread per
// (touched row, column) sums its row's positions in that order. No atomics, so a repeated token's
// gradient has the same bits on every run, as the CPU's.
#include <algorithm>
#include <vector>

#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/embedding.h"

namespace lrkv::cuda {
namespace {

template <typename T>
__global__ void ForwardKernel(const int32_t* __restrict__ tok, const T* __restrict__ w, T* __restrict__ y, int64_t n,
                              int64_t rows, int64_t d, int64_t row_begin) {
  LRKV_GRID_STRIDE(idx, n * d) {
    const int64_t i = idx / d, j = idx % d, row = tok[i] - row_begin;
    y[idx] = row >= 0 && row < rows ? w[row * d + j] : FromAcc<T>(Acc<T>(0));
  }
}

// T: dout's element type; D: dtable's (T or Acc<T>). Segment s covers positions
// order[begin[s] .. begin[s + 1]), all of table row rows[s] (local).
template <typename T, typename D>
__global__ void BackwardKernel(const int32_t* __restrict__ order, const int32_t* __restrict__ begin,
                               const int32_t* __restrict__ rows, const T* __restrict__ dy, D* __restrict__ dw,
                               int64_t segments, int64_t d) {
  LRKV_GRID_STRIDE(idx, segments * d) {
    const int64_t seg = idx / d, j = idx % d;
    Acc<T> sum = ToAcc(dw[int64_t(rows[seg]) * d + j]);
    for (int32_t k = begin[seg]; k < begin[seg + 1]; ++k) sum += ToAcc(dy[int64_t(order[k]) * d + j]);
    dw[int64_t(rows[seg]) * d + j] = FromAcc<D>(sum);
  }
}

// The positions of tokens in [row_begin, row_begin + rows), grouped by row in position order.
struct Segments {
  std::vector<int32_t> order, begin, rows;
};
Segments GroupByRow(const int32_t* tok, int64_t n, int64_t rows, int64_t row_begin) {
  std::vector<int32_t> count(rows + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = tok[i] - row_begin;
    if (r >= 0 && r < rows) ++count[r + 1];
  }
  for (int64_t r = 0; r < rows; ++r) count[r + 1] += count[r];
  Segments s;
  s.order.resize(count[rows]);
  std::vector<int32_t> next(count.begin(), count.end() - 1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = tok[i] - row_begin;
    if (r >= 0 && r < rows) s.order[next[r]++] = int32_t(i);
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (count[r + 1] > count[r]) s.rows.push_back(int32_t(r)), s.begin.push_back(count[r]);
  }
  s.begin.push_back(count[rows]);
  return s;
}

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
  ForwardKernel<<<GridFor(n * d), kThreads, 0, CurrentStream()>>>(tok.data<int32_t>(), table.data<T>(), out.data<T>(), n,
                                                                  rows, d, row_begin);
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
  const Segments seg = GroupByRow(host.data<int32_t>(), n, rows, row_begin);
  const int64_t segments = int64_t(seg.rows.size());
  if (segments == 0) return absl::OkStatus();
  LRKV_TRY_ASSIGN(const Tensor order, Upload(seg.order));
  LRKV_TRY_ASSIGN(const Tensor begin, Upload(seg.begin));
  LRKV_TRY_ASSIGN(const Tensor touched, Upload(seg.rows));
  const int32_t *o = order.data<int32_t>(), *b = begin.data<int32_t>(), *r = touched.data<int32_t>();
  if (dtable.dtype() == DTypeOf<Acc<T>>::value) {
    BackwardKernel<<<GridFor(segments * d), kThreads, 0, CurrentStream()>>>(o, b, r, dout.data<T>(),
                                                                            dtable.data<Acc<T>>(), segments, d);
  } else {
    BackwardKernel<<<GridFor(segments * d), kThreads, 0, CurrentStream()>>>(o, b, r, dout.data<T>(),
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
