// Cross-entropy pieces on CUDA: a block per row for the row maximum and the partial sums (exp in
// Acc<T>, the sum in double as on the CPU), a thread per logit for the backward. Targets may be a
// host or a device tensor. logits, dlogits (N, V): T; max, lse (N): Acc<T>, so a bf16 row's
// statistics keep fp32; sums (N, 2): double.
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv::cuda {
namespace {

template <typename T>
__global__ void RowMaxKernel(const T* __restrict__ z, Acc<T>* __restrict__ m, int64_t v) {
  const int64_t row = blockIdx.x;
  Acc<T> mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) mx = max(mx, ToAcc(z[row * v + j]));
  mx = BlockMax(mx);
  if (threadIdx.x == 0) m[row] = mx;
}

template <typename T>
__global__ void PartialSumsKernel(const T* __restrict__ z, const int32_t* __restrict__ tgt, int64_t col_begin,
                                  const Acc<T>* __restrict__ m, double* __restrict__ out, int64_t v) {
  const int64_t row = blockIdx.x;
  const T* zi = z + row * v;
  const Acc<T> mi = m[row];
  double s = 0;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) s += static_cast<double>(Exp(ToAcc(zi[j]) - mi));
  s = BlockSum(s);
  if (threadIdx.x == 0) {
    const int64_t local = tgt[row] - col_begin;
    out[2 * row] = s;
    out[2 * row + 1] = local >= 0 && local < v ? static_cast<double>(ToAcc(zi[local])) : 0.0;
  }
}

template <typename T>
__global__ void BackwardKernel(const T* __restrict__ z, const int32_t* __restrict__ tgt, int64_t col_begin,
                               const Acc<T>* __restrict__ lse, double scale, T* __restrict__ dz, int64_t n,
                               int64_t v) {
  using A = Acc<T>;
  const A s = static_cast<A>(scale);
  LRKV_GRID_STRIDE(idx, n * v) {
    const int64_t i = idx / v, j = idx % v;
    A g = Exp(ToAcc(z[idx]) - lse[i]) * s;
    if (tgt[i] - col_begin == j) g -= s;
    dz[idx] = FromAcc<T>(g);
  }
}

template <typename T>
absl::Status RowMax(const Tensor& logits, Tensor& max) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  if (n == 0) return absl::OkStatus();
  RowMaxKernel<<<static_cast<unsigned>(n), RowThreads(v), 0, CurrentStream()>>>(logits.data<T>(),
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
  PartialSumsKernel<<<static_cast<unsigned>(n), RowThreads(v), 0, CurrentStream()>>>(
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
  BackwardKernel<<<GridFor(n * v), kThreads, 0, CurrentStream()>>>(logits.data<T>(), tgt.data<int32_t>(), col_begin,
                                                                   lse.data<Acc<T>>(), scale, dlogits.data<T>(), n, v);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status LogitRowMax(const Tensor& logits, Tensor& max) {
  LRKV_CUDA_FLOAT_DISPATCH(logits.dtype(), RowMax, logits, max);
}
absl::Status CrossEntropyPartialSums(const Tensor& logits, const Tensor& targets, int64_t col_begin,
                                     const Tensor& max, Tensor& sums) {
  LRKV_CUDA_FLOAT_DISPATCH(logits.dtype(), PartialSums, logits, targets, col_begin, max, sums);
}
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& lse,
                                  double scale, Tensor& dlogits) {
  LRKV_CUDA_FLOAT_DISPATCH(logits.dtype(), Backward, logits, targets, col_begin, lse, scale, dlogits);
}

}  // namespace lrkv::cuda
