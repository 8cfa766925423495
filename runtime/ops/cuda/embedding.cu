// Embedding lookup on CUDA. Token ids may be a host tensor (as the launcher reads them there) or a
// device tensor; host ids are uploaded first. Backward scatters with atomicAdd, so the order in which
// repeated tokens add up (and the last bits of the result) is not deterministic. Backward adds dout
// (N, d: T) into dtable (V, d), whose dtype is T or Acc<T> (an fp32 gradient of a bf16 table).
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

// T: dout's element type; D: dtable's (T or Acc<T>), to which each addend is converted first.
template <typename T, typename D>
__global__ void BackwardKernel(const int32_t* __restrict__ tok, const T* __restrict__ dy, D* __restrict__ dw, int64_t n,
                               int64_t rows, int64_t d, int64_t row_begin) {
  LRKV_GRID_STRIDE(idx, n * d) {
    const int64_t i = idx / d, j = idx % d, row = tok[i] - row_begin;
    if (row >= 0 && row < rows) atomicAdd(dw + row * d + j, FromAcc<D>(ToAcc(dy[idx])));
  }
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
  LRKV_TRY_ASSIGN(Tensor tok, OnDevice(tokens));
  if (dtable.dtype() == DTypeOf<Acc<T>>::value) {
    BackwardKernel<<<GridFor(n * d), kThreads, 0, CurrentStream()>>>(tok.data<int32_t>(), dout.data<T>(),
                                                                     dtable.data<Acc<T>>(), n, rows, d, row_begin);
  } else {
    BackwardKernel<<<GridFor(n * d), kThreads, 0, CurrentStream()>>>(tok.data<int32_t>(), dout.data<T>(),
                                                                     dtable.data<T>(), n, rows, d, row_begin);
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
