#include "runtime/ops/embedding.h"

#include "runtime/ops/dispatch.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status Forward(const Tensor& tokens, const Tensor& table, Tensor& out) {
  const int64_t n = tokens.numel(), vocab = table.dim(0), d = table.dim(1);
  const int32_t* tok = tokens.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (tok[i] < 0 || tok[i] >= vocab) {
      return absl::OutOfRangeError(
          absl::StrCat("embedding: token id ", tok[i], " at position ", i, " outside vocabulary [0, ", vocab, ")"));
    }
  }
  const T* w = table.data<T>();
  T* y = out.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) y[i * d + j] = w[tok[i] * d + j];
  return absl::OkStatus();
}

// Parallel over columns, so that repeated tokens never race on a row.
template <typename T>
absl::Status Backward(const Tensor& tokens, const Tensor& dout, Tensor& dtable) {
  const int64_t n = tokens.numel(), d = dtable.dim(1);
  const int32_t* tok = tokens.data<int32_t>();
  const T* dy = dout.data<T>();
  T* dw = dtable.data<T>();
#pragma omp parallel for
  for (int64_t j0 = 0; j0 < d; j0 += 16) {
    const int64_t j1 = std::min(d, j0 + 16);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = j0; j < j1; ++j) dw[tok[i] * d + j] += dy[i * d + j];
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out) {
  LRKV_CPU_FLOAT_DISPATCH(table.dtype(), Forward, tokens, table, out);
}
absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable) {
  LRKV_CPU_FLOAT_DISPATCH(dtable.dtype(), Backward, tokens, dout, dtable);
}

}  // namespace lrkv::cpu
