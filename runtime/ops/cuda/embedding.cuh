// The CUDA kernels of embedding.cu, which launches them; compiled also by the host compiler for the tests
// (runtime/README.md, "CUDA backend": why the kernels live in headers, in an unnamed namespace).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/cuda/device_math.cuh"

namespace lrkv::cuda::embedding {
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

// Host side, for the launcher: the positions of tokens in [row_begin, row_begin + rows), grouped by
// row in position order, which BackwardKernel takes as its segments.
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

}  // namespace
}  // namespace lrkv::cuda::embedding
