// Device-side helpers shared by the CUDA kernels (runtime/ops/cuda/*.cuh): element types and their
// accumulation types, conversions, warp and block reductions, launch sizes. Kernels are templated on
// the storage type T in {float, double, __nv_bfloat16}; arithmetic runs in Acc<T> (double for
// double, float otherwise), so bf16 kernels compute and accumulate in fp32.
//
// Compiled by nvcc and, for tests on a machine without a GPU, by the host compiler under
// tests/testing/cuda_on_cpu.h (tests/unit/cuda_kernels_on_cpu_test.cc): it uses only what that
// header emulates.
#pragma once

#ifndef CUDA_ON_CPU
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace lrkv::cuda {

using bf16 = __nv_bfloat16;

template <typename T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <typename T>
using Acc = typename AccOf<T>::type;

__device__ __forceinline__ float ToAcc(float x) { return x; }
__device__ __forceinline__ double ToAcc(double x) { return x; }
__device__ __forceinline__ float ToAcc(bf16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T FromAcc(Acc<T> x) {
  return static_cast<T>(x);
}
template <>
__device__ __forceinline__ bf16 FromAcc<bf16>(float x) {
  return __float2bfloat16_rn(x);
}

// exp/log/tanh/sqrt in the accumulation type.
__device__ __forceinline__ float Exp(float x) { return expf(x); }
__device__ __forceinline__ double Exp(double x) { return exp(x); }
__device__ __forceinline__ float Log(float x) { return logf(x); }
__device__ __forceinline__ double Log(double x) { return log(x); }
__device__ __forceinline__ float Tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double Tanh(double x) { return tanh(x); }
__device__ __forceinline__ float Sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double Sqrt(double x) { return sqrt(x); }

template <typename A>
__device__ __forceinline__ A WarpSum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename A>
__device__ __forceinline__ A WarpMax(A v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <typename A>
__device__ A BlockSum(A v) {
  __shared__ A partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : A(0);
  return WarpSum(v);
}
template <typename A>
__device__ A BlockMax(A v) {
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
// Internal linkage, as every kernel header's (runtime/ops/cuda/*.cuh): a test's host copy and the
// launchers' stubs share the name.
namespace {
template <typename T, typename A>
__global__ void FinishColumnSums(const A* __restrict__ partial, int64_t chunks, int64_t c, T* __restrict__ out) {
  LRKV_GRID_STRIDE(j, c) {
    A s = 0;
    for (int64_t k = 0; k < chunks; ++k) s += partial[k * c + j];
    out[j] = FromAcc<T>(ToAcc(out[j]) + s);
  }
}
}  // namespace

// Rows per chunk: kRowChunk, or more so that the chunks fit in a grid's y dimension.
inline int64_t RowsPerChunk(int64_t n) { return std::max<int64_t>(kRowChunk, (n + 65534) / 65535); }
// Threads for a one-block-per-row kernel over c columns: a multiple of 32, at most kThreads.
inline int RowThreads(int64_t c) {
  return static_cast<int>(std::min<int64_t>(kThreads, std::max<int64_t>(32, (c + 31) / 32 * 32)));
}

}  // namespace lrkv::cuda
