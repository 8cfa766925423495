#include <algorithm>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/embedding.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status Forward(const Tensor& tokens, const Tensor& table, Tensor& out, int64_t row_begin) {
  const int64_t n = tokens.numel(), rows = table.dim(0), d = table.dim(1);
  const int32_t* tok = tokens.data<int32_t>();
  const T* w = table.data<T>();
  T* y = out.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = tok[i] - row_begin;
    if (row >= 0 && row < rows) {
      std::copy_n(w + row * d, d, y + i * d);
    } else {
      std::fill_n(y + i * d, d, T(0));
    }
  }
  return absl::OkStatus();
}

// Parallel over columns, so that repeated tokens never race on a row.
template <typename T>
absl::Status Backward(const Tensor& tokens, const Tensor& dout, Tensor& dtable, int64_t row_begin) {
  const int64_t n = tokens.numel(), rows = dtable.dim(0), d = dtable.dim(1);
  const int32_t* tok = tokens.data<int32_t>();
  const T* dy = dout.data<T>();
  T* dw = dtable.data<T>();
#pragma omp parallel for
  for (int64_t j0 = 0; j0 < d; j0 += 16) {
    const int64_t j1 = std::min(d, j0 + 16);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = tok[i] - row_begin;
      if (row < 0 || row >= rows) continue;
      for (int64_t j = j0; j < j1; ++j) dw[row * d + j] += dy[i * d + j];
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out, int64_t row_begin) {
  LRKV_CPU_FLOAT_DISPATCH(table.dtype(), Forward, tokens, table, out, row_begin);
}
absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable, int64_t row_begin) {
  LRKV_CPU_FLOAT_DISPATCH(dout.dtype(), Backward, tokens, dout, dtable, row_begin);
}

}  // namespace lrkv::cpu
