// Device-side helpers shared by the CUDA kernels (runtime/ops/cuda/*.cu): element types and their
// accumulation types, conversions, warp and block reductions, launch sizes, and the dtype dispatch.
// Kernels are templated on the storage type T in {float, double, __nv_bfloat16}; arithmetic runs in
// Acc<T> (double for double, float otherwise), so bf16 kernels compute and accumulate in fp32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/device.h"
#include "runtime/dtype.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace lrkv::cuda {

using bf16 = __nv_bfloat16;

template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };
template <typename T> using Acc = typename AccOf<T>::type;

__device__ __forceinline__ float ToAcc(float x) { return x; }
__device__ __forceinline__ double ToAcc(double x) { return x; }
__device__ __forceinline__ float ToAcc(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T FromAcc(Acc<T> x) { return static_cast<T>(x); }
template <> __device__ __forceinline__ bf16 FromAcc<bf16>(float x) { return __float2bfloat16_rn(x); }

// exp/log/tanh/sqrt in the accumulation type.
__device__ __forceinline__ float Exp(float x) { return expf(x); }
__device__ __forceinline__ double Exp(double x) { return exp(x); }
__device__ __forceinline__ float Log(float x) { return logf(x); }
__device__ __forceinline__ double Log(double x) { return log(x); }
__device__ __forceinline__ float Tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double Tanh(double x) { return tanh(x); }
__device__ __forceinline__ float Sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double Sqrt(double x) { return sqrt(x); }

template <typename A> __device__ __forceinline__ A WarpSum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename A> __device__ __forceinline__ A WarpMax(A v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <typename A> __device__ A BlockSum(A v) {
  __shared__ A partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : A(0);
  return WarpSum(v);
}
template <typename A> __device__ A BlockMax(A v) {
  __shared__ A partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = WarpMax(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : A(-INFINITY);
  return WarpMax(v);
}

constexpr int kThreads = 256;
// Blocks for a grid-stride loop over n elements.
inline unsigned GridFor(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(1) << 20)));
}
#define LRKV_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// Column sums over many rows in two deterministic stages: a kernel writes partial[chunk * c + j] (the
// sum over a chunk of RowsPerChunk(n) rows), then FinishColumnSums adds sum_chunk partial[chunk * c + j]
// to out[j]. Used for the weight gradients of the norms.
constexpr int64_t kRowChunk = 128;
template <typename T, typename A>
__global__ void FinishColumnSums(const A* __restrict__ partial, int64_t chunks, int64_t c, T* __restrict__ out) {
  LRKV_GRID_STRIDE(j, c) {
    A s = 0;
    for (int64_t k = 0; k < chunks; ++k) s += partial[k * c + j];
    out[j] = FromAcc<T>(ToAcc(out[j]) + s);
  }
}

// out (C) += sum_chunk partial (chunks, C), written in out's dtype: T or Acc<T>.
template <typename T>
absl::Status FinishInto(const Acc<T>* partial, int64_t chunks, int64_t c, Tensor& out) {
  if (out.dtype() == DTypeOf<Acc<T>>::value) {
    FinishColumnSums<<<GridFor(c), kThreads, 0, CurrentStream()>>>(partial, chunks, c, out.data<Acc<T>>());
  } else {
    FinishColumnSums<<<GridFor(c), kThreads, 0, CurrentStream()>>>(partial, chunks, c, out.data<T>());
  }
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}
// Rows per chunk: kRowChunk, or more so that the chunks fit in a grid's y dimension.
inline int64_t RowsPerChunk(int64_t n) { return std::max<int64_t>(kRowChunk, (n + 65534) / 65535); }
// Threads for a one-block-per-row kernel over c columns: a multiple of 32, at most kThreads.
inline int RowThreads(int64_t c) { return static_cast<int>(std::min<int64_t>(kThreads, std::max<int64_t>(32, (c + 31) / 32 * 32))); }

// An i32 tensor (token ids, targets) on the device: `t` itself, or an uploaded copy of a host tensor.
inline absl::StatusOr<Tensor> OnDevice(const Tensor& t) {
  if (t.device() == Device::kCuda) return t;
  LRKV_TRY_ASSIGN(Tensor d, Tensor::Empty(t.shape(), t.dtype(), Device::kCuda));
  LRKV_TRY(d.CopyFrom(t));
  return d;
}

}  // namespace lrkv::cuda

// Inside a CUDA kernel file: instantiate the launcher template for the tensor's floating dtype.
#define LRKV_CUDA_FLOAT_DISPATCH(dtype, kernel, ...)                                              \
  switch (dtype) {                                                                                \
    case ::lrkv::DType::kF32:                                                                     \
      return kernel<float>(__VA_ARGS__);                                                          \
    case ::lrkv::DType::kF64:                                                                     \
      return kernel<double>(__VA_ARGS__);                                                         \
    case ::lrkv::DType::kBF16:                                                                    \
      return kernel<::lrkv::cuda::bf16>(__VA_ARGS__);                                             \
    default:                                                                                      \
      return absl::UnimplementedError(                                                            \
          absl::StrCat(#kernel, ": dtype ", ::lrkv::DTypeName(dtype), " not supported on cuda")); \
  }
