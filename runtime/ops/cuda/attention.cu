// Causal attention on CUDA, flash-attention style: no (T, T) matrix is ever materialised in device
// memory. Query rows, K/V tiles and the output accumulators live in shared memory; the softmax is
// computed online (running max and sum per row) and rescaled tile by tile.
//
// Forward: a block owns kBQ query rows of one (batch, head); its kWarps warps own kRowsPerWarp rows
// each. For every key tile of kBK keys (one key per lane) a warp computes the scores of one row
// (lane j: q_i . k_j), updates the row's running max m and sum l, and accumulates p_ij v_j into the
// row's output. Tiles past the block's last query row are skipped (causality).
//
// Backward (three passes over K/V instead of the fused FlashAttention-2 kernel; correct and
// deterministic, not tuned): (1) per query row, D_i = sum_j p_ij (dO_i . v_j) (the interface does
// not pass O, so dO . O cannot be used), then (2) dq_i = sum_j ds_ij k_j with ds_ij = p_ij (dp_ij -
// D_i) scale, both in one kernel over query tiles; (3) a kernel over key tiles of each KV head sums
// dv_j = sum_i p_ij dO_i and dk_j = sum_i ds_ij q_i over the group's local query heads, so dk and dv
// need no atomics.
//
// The forward saves each row's log-sum-exp in `lse` (B, H, T) (Acc<T>: fp32, or fp64 for f64
// tensors); backward reads it. (The kernels can also recompute it, lse_known = false.)
//
// bf16 heads whose widths flash_attention.cuh supports (multiples of 16, up to MLA's Dqk 192 / Dv
// 128) take its tensor-core kernels instead, forward and backward (LRKV_CUDA_FLASH_ATTENTION=0 keeps
// them on the SIMT kernels, for comparisons and as a way around them). Both save the same state, each
// row's log-sum-exp.
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/attention.h"
#include "runtime/ops/cuda/flash_attention.cuh"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kBQ = kWarps * kRowsPerWarp;  // query rows (forward, dq) or key rows (dk/dv) per block
constexpr int kBK = 32;                     // keys (forward, dq) or queries (dk/dv) per tile: one per lane
constexpr int kBlockThreads = kWarps * 32;

// One shape for both kernel families; the SIMT kernels take the scale in their accumulator type
// beside it.
using Dims = flash::Dims;

Dims GetDims(const Tensor& q, const Tensor& v, const KvGroups& g, double scale) {
  return Dims{q.dim(0), q.dim(1), q.dim(2), v.dim(2), q.dim(3), v.dim(3), g.group, g.q_head_offset,
              static_cast<float>(scale)};
}

// Padded row stride for tiles read row-per-lane (odd, so that lanes hit distinct banks).
__host__ __device__ inline int64_t Padded(int64_t d) { return d | 1; }

// Loads rows [row0, row0 + rows) of a (B, T, heads, D) tensor's head `head` into tile[rows][stride]
// (zeros past T), times `mul`.
template <typename T, typename A>
__device__ void LoadTile(A* tile, int64_t stride, const T* __restrict__ src, const Dims& d, int64_t bi, int64_t heads,
                         int64_t head, int64_t width, int64_t row0, int rows, A mul) {
  for (int64_t idx = threadIdx.x; idx < rows * width; idx += blockDim.x) {
    const int64_t r = idx / width, c = idx % width, row = row0 + r;
    tile[r * stride + c] = row < d.t ? mul * ToAcc(src[((bi * d.t + row) * heads + head) * width + c]) : A(0);
  }
}

template <typename A>
__device__ __forceinline__ A Dot(const A* a, const A* b, int64_t n) {
  A s = 0;
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

// ---------------------------------------------------------------------------------------------
// Forward. Shared: Qs[kBQ][dqk] (pre-scaled), Ks[kBK][Padded(dqk)], Vs[kBK][dv], Os[kBQ][dv],
// Ps[kWarps][kBK].
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    ForwardKernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ o,
                  Acc<T>* __restrict__ lse, Dims d, Acc<T> scale) {
  using A = Acc<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* smem = reinterpret_cast<A*>(smem_raw);
  const int64_t ks = Padded(d.dqk);
  A* Qs = smem;
  A* Ks = Qs + kBQ * d.dqk;
  A* Vs = Ks + kBK * ks;
  A* Os = Vs + kBK * d.dv;
  A* Ps = Os + kBQ * d.dv;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t q0 = int64_t(blockIdx.x) * kBQ, hi = blockIdx.y, bi = blockIdx.z;
  const int64_t g = (hi + d.offset) / d.group;
  const int64_t q_last = min(d.t, q0 + kBQ) - 1;

  LoadTile(Qs, d.dqk, q, d, bi, d.h, hi, d.dqk, q0, kBQ, scale);
  for (int64_t idx = threadIdx.x; idx < kBQ * d.dv; idx += blockDim.x) Os[idx] = A(0);
  A m[kRowsPerWarp], l[kRowsPerWarp];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) m[rr] = -INFINITY, l[rr] = 0;

  for (int64_t k0 = 0; k0 <= q_last; k0 += kBK) {
    __syncthreads();  // the previous tile is no longer read
    LoadTile(Ks, ks, k, d, bi, d.hk, g, d.dqk, k0, kBK, A(1));
    LoadTile(Vs, d.dv, v, d, bi, d.hk, g, d.dv, k0, kBK, A(1));
    __syncthreads();
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp + rr * kWarps;
      const int64_t i = q0 + r, j = k0 + lane;
      if (i >= d.t || k0 > i) continue;  // warp-uniform
      const bool valid = j <= i;
      const A s = valid ? Dot(Qs + r * d.dqk, Ks + lane * ks, d.dqk) : A(-INFINITY);
      const A m_new = max(m[rr], WarpMax(s));
      const A p = valid ? Exp(s - m_new) : A(0);
      const A corr = Exp(m[rr] - m_new);  // 0 on the first tile (m = -inf)
      l[rr] = l[rr] * corr + WarpSum(p);
      m[rr] = m_new;
      Ps[warp * kBK + lane] = p;
      __syncwarp();
      for (int64_t c = lane; c < d.dv; c += 32) {
        A acc = Os[r * d.dv + c] * corr;
        for (int jj = 0; jj < kBK; ++jj) acc += Ps[warp * kBK + jj] * Vs[jj * d.dv + c];
        Os[r * d.dv + c] = acc;
      }
      __syncwarp();
    }
  }
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int r = warp + rr * kWarps;
    const int64_t i = q0 + r;
    if (i >= d.t) continue;
    const A inv = A(1) / l[rr];
    T* oi = o + ((bi * d.t + i) * d.h + hi) * d.dv;
    for (int64_t c = lane; c < d.dv; c += 32) oi[c] = FromAcc<T>(Os[r * d.dv + c] * inv);
    if (lse != nullptr && lane == 0) lse[(bi * d.h + hi) * d.t + i] = m[rr] + Log(l[rr]);
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, query side: [lse when not stored], D_i, dq_i. Shared: Qs[kBQ][dqk] (pre-scaled),
// dOs[kBQ][dv], Ks[kBK][Padded(dqk)], Vs[kBK][Padded(dv)], dQs[kBQ][dqk], Ps[kWarps][kBK].
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    BackwardQueryKernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                        const T* __restrict__ v, Acc<T>* __restrict__ lse, bool lse_known, Acc<T>* __restrict__ dsum,
                        T* __restrict__ dq, Dims d, Acc<T> scale) {
  using A = Acc<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* smem = reinterpret_cast<A*>(smem_raw);
  const int64_t ks = Padded(d.dqk), vs = Padded(d.dv);
  A* Qs = smem;
  A* dOs = Qs + kBQ * d.dqk;
  A* Ks = dOs + kBQ * d.dv;
  A* Vs = Ks + kBK * ks;
  A* dQs = Vs + kBK * vs;
  A* Ps = dQs + kBQ * d.dqk;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t q0 = int64_t(blockIdx.x) * kBQ, hi = blockIdx.y, bi = blockIdx.z;
  const int64_t g = (hi + d.offset) / d.group;
  const int64_t q_last = min(d.t, q0 + kBQ) - 1;

  LoadTile(Qs, d.dqk, q, d, bi, d.h, hi, d.dqk, q0, kBQ, scale);
  LoadTile(dOs, d.dv, dout, d, bi, d.h, hi, d.dv, q0, kBQ, A(1));
  for (int64_t idx = threadIdx.x; idx < kBQ * d.dqk; idx += blockDim.x) dQs[idx] = A(0);
  A row_lse[kRowsPerWarp], row_d[kRowsPerWarp];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t i = q0 + warp + rr * kWarps;
    row_lse[rr] = lse_known && i < d.t ? lse[(bi * d.h + hi) * d.t + i] : A(0);
    row_d[rr] = 0;
  }

  // pass 0: the log-sum-exp, when the forward could not store it; pass 1: D; pass 2: dq.
  for (int pass = lse_known ? 1 : 0; pass < 3; ++pass) {
    A m[kRowsPerWarp], l[kRowsPerWarp];
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) m[rr] = -INFINITY, l[rr] = 0;
    for (int64_t k0 = 0; k0 <= q_last; k0 += kBK) {
      __syncthreads();
      LoadTile(Ks, ks, k, d, bi, d.hk, g, d.dqk, k0, kBK, A(1));
      if (pass > 0) LoadTile(Vs, vs, v, d, bi, d.hk, g, d.dv, k0, kBK, A(1));
      __syncthreads();
#pragma unroll
      for (int rr = 0; rr < kRowsPerWarp; ++rr) {
        const int r = warp + rr * kWarps;
        const int64_t i = q0 + r, j = k0 + lane;
        if (i >= d.t || k0 > i) continue;
        const bool valid = j <= i;
        const A s = valid ? Dot(Qs + r * d.dqk, Ks + lane * ks, d.dqk) : A(-INFINITY);
        if (pass == 0) {
          const A m_new = max(m[rr], WarpMax(s));
          l[rr] = l[rr] * Exp(m[rr] - m_new) + WarpSum(valid ? Exp(s - m_new) : A(0));
          m[rr] = m_new;
          continue;
        }
        const A p = valid ? Exp(s - row_lse[rr]) : A(0);
        const A dp = valid ? Dot(dOs + r * d.dv, Vs + lane * vs, d.dv) : A(0);
        if (pass == 1) {
          row_d[rr] += WarpSum(p * dp);
          continue;
        }
        Ps[warp * kBK + lane] = p * (dp - row_d[rr]) * scale;
        __syncwarp();
        for (int64_t c = lane; c < d.dqk; c += 32) {
          A acc = dQs[r * d.dqk + c];
          for (int jj = 0; jj < kBK; ++jj) acc += Ps[warp * kBK + jj] * Ks[jj * ks + c];
          dQs[r * d.dqk + c] = acc;
        }
        __syncwarp();
      }
    }
    if (pass == 0) {
#pragma unroll
      for (int rr = 0; rr < kRowsPerWarp; ++rr) row_lse[rr] = m[rr] + Log(l[rr]);
    }
  }
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int r = warp + rr * kWarps;
    const int64_t i = q0 + r;
    if (i >= d.t) continue;
    T* dqi = dq + ((bi * d.t + i) * d.h + hi) * d.dqk;
    for (int64_t c = lane; c < d.dqk; c += 32) dqi[c] = FromAcc<T>(dQs[r * d.dqk + c]);
    if (lane == 0) {
      dsum[(bi * d.h + hi) * d.t + i] = row_d[rr];
      if (!lse_known) lse[(bi * d.h + hi) * d.t + i] = row_lse[rr];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, key side: dk, dv for kBQ key rows of one (batch, KV head), summed over the local query
// heads of the group. Shared: Ks[kBQ][dqk], Vs[kBQ][dv], dKs[kBQ][dqk], dVs[kBQ][dv],
// Qs[kBK][Padded(dqk)], dOs[kBK][Padded(dv)], Ls[kBK], Ds[kBK], Ps[kWarps][kBK], Ss[kWarps][kBK].
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    BackwardKeyKernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                      const T* __restrict__ v, const Acc<T>* __restrict__ lse, const Acc<T>* __restrict__ dsum,
                      T* __restrict__ dk, T* __restrict__ dv, Dims d, Acc<T> scale) {
  using A = Acc<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* smem = reinterpret_cast<A*>(smem_raw);
  const int64_t qs = Padded(d.dqk), os = Padded(d.dv);
  A* Ks = smem;
  A* Vs = Ks + kBQ * d.dqk;
  A* dKs = Vs + kBQ * d.dv;
  A* dVs = dKs + kBQ * d.dqk;
  A* Qs = dVs + kBQ * d.dv;
  A* dOs = Qs + kBK * qs;
  A* Ls = dOs + kBK * os;
  A* Ds = Ls + kBK;
  A* Ps = Ds + kBK;
  A* Ss = Ps + kWarps * kBK;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t j0 = int64_t(blockIdx.x) * kBQ, g = blockIdx.y, bi = blockIdx.z;

  LoadTile(Ks, d.dqk, k, d, bi, d.hk, g, d.dqk, j0, kBQ, A(1));
  LoadTile(Vs, d.dv, v, d, bi, d.hk, g, d.dv, j0, kBQ, A(1));
  for (int64_t idx = threadIdx.x; idx < kBQ * d.dqk; idx += blockDim.x) dKs[idx] = A(0);
  for (int64_t idx = threadIdx.x; idx < kBQ * d.dv; idx += blockDim.x) dVs[idx] = A(0);

  const int64_t first = d.FirstQueryHead(g), last = d.EndQueryHead(g);
  for (int64_t hi = first; hi < last; ++hi) {
    for (int64_t i0 = j0 / kBK * kBK; i0 < d.t; i0 += kBK) {
      __syncthreads();
      LoadTile(Qs, qs, q, d, bi, d.h, hi, d.dqk, i0, kBK, A(1));
      LoadTile(dOs, os, dout, d, bi, d.h, hi, d.dv, i0, kBK, A(1));
      if (threadIdx.x < kBK) {
        const int64_t i = i0 + threadIdx.x;
        Ls[threadIdx.x] = i < d.t ? lse[(bi * d.h + hi) * d.t + i] : A(0);
        Ds[threadIdx.x] = i < d.t ? dsum[(bi * d.h + hi) * d.t + i] : A(0);
      }
      __syncthreads();
#pragma unroll
      for (int rr = 0; rr < kRowsPerWarp; ++rr) {
        const int r = warp + rr * kWarps;
        const int64_t j = j0 + r, i = i0 + lane;
        if (j >= d.t || i0 + kBK <= j) continue;  // warp-uniform: no query of this tile sees key j
        const bool valid = i < d.t && i >= j;
        A p = 0, ds = 0;
        if (valid) {
          const A s = scale * Dot(Qs + lane * qs, Ks + r * d.dqk, d.dqk);
          p = Exp(s - Ls[lane]);
          const A dp = Dot(dOs + lane * os, Vs + r * d.dv, d.dv);
          ds = p * (dp - Ds[lane]) * scale;
        }
        Ps[warp * kBK + lane] = p;
        Ss[warp * kBK + lane] = ds;
        __syncwarp();
        for (int64_t c = lane; c < d.dv; c += 32) {
          A acc = dVs[r * d.dv + c];
          for (int ii = 0; ii < kBK; ++ii) acc += Ps[warp * kBK + ii] * dOs[ii * os + c];
          dVs[r * d.dv + c] = acc;
        }
        for (int64_t c = lane; c < d.dqk; c += 32) {
          A acc = dKs[r * d.dqk + c];
          for (int ii = 0; ii < kBK; ++ii) acc += Ss[warp * kBK + ii] * Qs[ii * qs + c];
          dKs[r * d.dqk + c] = acc;
        }
        __syncwarp();
      }
    }
  }
  __syncthreads();
  for (int64_t idx = threadIdx.x; idx < kBQ * d.dqk; idx += blockDim.x) {
    const int64_t r = idx / d.dqk, c = idx % d.dqk, j = j0 + r;
    if (j < d.t) dk[((bi * d.t + j) * d.hk + g) * d.dqk + c] = FromAcc<T>(dKs[idx]);
  }
  for (int64_t idx = threadIdx.x; idx < kBQ * d.dv; idx += blockDim.x) {
    const int64_t r = idx / d.dv, c = idx % d.dv, j = j0 + r;
    if (j < d.t) dv[((bi * d.t + j) * d.hk + g) * d.dv + c] = FromAcc<T>(dVs[idx]);
  }
}

// The shared memory a block may opt in to on this process's device.
absl::StatusOr<size_t> OptInSharedBytes() {
  // Asked once: a process drives one device (its local rank's).
  static const absl::StatusOr<size_t> bytes = []() -> absl::StatusOr<size_t> {
    int device = 0, limit = 0;
    LRKV_CUDA_TRY(cudaGetDevice(&device));
    LRKV_CUDA_TRY(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return size_t(limit);
  }();
  return bytes;
}

// Opts the kernel in to `bytes` of dynamic shared memory, or explains why the head is too wide.
template <typename Kernel>
absl::Status PrepareSharedMemory(Kernel kernel, size_t bytes, const char* what, const Dims& d) {
  LRKV_TRY_ASSIGN(const size_t limit, OptInSharedBytes());
  if (bytes > limit) {
    return absl::UnimplementedError(absl::StrCat("CUDA attention ", what, ": head widths Dqk=", d.dqk, ", Dv=", d.dv,
                                                 " need ", bytes, " bytes of shared memory per block, the device has ",
                                                 limit));
  }
  LRKV_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  return absl::OkStatus();
}

// Blocks of `rows` query (or key) rows, per head, per sequence.
dim3 Grid(const Dims& d, int64_t heads, int64_t rows) {
  return dim3(static_cast<unsigned>((d.t + rows - 1) / rows), static_cast<unsigned>(heads), static_cast<unsigned>(d.b));
}

absl::Status CheckGrid(const Dims& d) {
  LRKV_REQUIRE(d.h <= 65535 && d.hk <= 65535 && d.b <= 65535,
               "CUDA attention: at most 65535 heads, KV heads and batch rows, got H=", d.h, ", Hk=", d.hk, ", B=", d.b);
  return absl::OkStatus();
}

// The tensor-core kernels (flash_attention.cuh) behind __global__ entry points, each handing over
// its dynamic shared memory.
__global__ void __launch_bounds__(flash::kThreads)
    FlashForwardKernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                       bf16* __restrict__ o, float* __restrict__ lse, flash::Dims d) {
  extern __shared__ __align__(128) unsigned char flash_smem[];
  flash::Forward(flash_smem, q, k, v, o, lse, d);
}
__global__ void __launch_bounds__(flash::kThreads)
    FlashBackwardQueriesKernel(const bf16* __restrict__ dout, const bf16* __restrict__ q, const bf16* __restrict__ k,
                               const bf16* __restrict__ v, const float* __restrict__ lse, float* __restrict__ dsum,
                               bf16* __restrict__ dq, flash::Dims d) {
  extern __shared__ __align__(128) unsigned char flash_smem[];
  flash::BackwardQueries(flash_smem, dout, q, k, v, lse, dsum, dq, d);
}
__global__ void __launch_bounds__(flash::kThreads)
    FlashBackwardKeysKernel(const bf16* __restrict__ dout, const bf16* __restrict__ q, const bf16* __restrict__ k,
                            const bf16* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ dsum,
                            bf16* __restrict__ dk, bf16* __restrict__ dv, flash::Dims d) {
  extern __shared__ __align__(128) unsigned char flash_smem[];
  flash::BackwardKeys(flash_smem, dout, q, k, v, lse, dsum, dk, dv, d);
}

// Whether the tensor-core kernels take these tensors: bf16, head widths they support, every bf16
// tensor they load on 16 bytes (8 elements at a time), and not switched off.
template <typename T>
bool UsesTensorCores(const Dims& d, std::initializer_list<const Tensor*> loaded) {
  static const bool enabled = [] {
    const char* env = std::getenv("LRKV_CUDA_FLASH_ATTENTION");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  if constexpr (!std::is_same<T, bf16>::value) {
    return false;
  } else {
    // One device per process: its limit once (0 if unknown: the SIMT kernels, whose launch reports why).
    if (!enabled || !flash::Supports(d.dqk, d.dv, OptInSharedBytes().value_or(0))) return false;
    for (const Tensor* t : loaded) {
      if (reinterpret_cast<uintptr_t>(t->raw()) % 16 != 0) return false;
    }
    return true;
  }
}

absl::Status FlashForward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse, const Dims& d) {
  const size_t bytes = flash::ForwardTiles(nullptr, d).arena.bytes();
  LRKV_TRY(PrepareSharedMemory(FlashForwardKernel, bytes, "forward (tensor cores)", d));
  FlashForwardKernel<<<Grid(d, d.h, flash::kBlockRows), flash::kThreads, bytes, CurrentStream()>>>(
      q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), o.data<bf16>(), lse.data<float>(), d);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

// dsum: (B, H, T) fp32 scratch for D, written by the queries' kernel, read by the keys'.
absl::Status FlashBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse,
                           Tensor& dq, Tensor& dk, Tensor& dv, float* dsum, const Dims& d) {
  if (d.h > 0) {
    const size_t bytes = flash::QueryGradTiles(nullptr, d).arena.bytes();
    LRKV_TRY(PrepareSharedMemory(FlashBackwardQueriesKernel, bytes, "backward (queries, tensor cores)", d));
    FlashBackwardQueriesKernel<<<Grid(d, d.h, flash::kBlockRows), flash::kThreads, bytes, CurrentStream()>>>(
        dout.data<bf16>(), q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), lse.data<float>(), dsum, dq.data<bf16>(),
        d);
    LRKV_CUDA_TRY_LAUNCH();
  }
  const size_t bytes = flash::KeyGradTiles(nullptr, d).arena.bytes();
  LRKV_TRY(PrepareSharedMemory(FlashBackwardKeysKernel, bytes, "backward (keys, tensor cores)", d));
  FlashBackwardKeysKernel<<<Grid(d, d.hk, flash::kBlockRows), flash::kThreads, bytes, CurrentStream()>>>(
      dout.data<bf16>(), q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), lse.data<float>(), dsum, dk.data<bf16>(),
      dv.data<bf16>(), d);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o, Tensor& lse_out,
                     KvGroups groups) {
  using A = Acc<T>;
  const Dims d = GetDims(q, v, groups, scale);
  if (d.b * d.h * d.t == 0) return absl::OkStatus();
  LRKV_TRY(CheckGrid(d));
  if (UsesTensorCores<T>(d, {&q, &k, &v})) return FlashForward(q, k, v, o, lse_out, d);
  const size_t bytes =
      sizeof(A) * (kBQ * d.dqk + kBK * Padded(d.dqk) + kBK * d.dv + kBQ * d.dv + kWarps * kBK);
  LRKV_TRY(PrepareSharedMemory(ForwardKernel<T>, bytes, "forward", d));
  A* lse = lse_out.data<A>();
  ForwardKernel<T><<<Grid(d, d.h, kBQ), kBlockThreads, bytes, CurrentStream()>>>(q.data<T>(), k.data<T>(), v.data<T>(),
                                                                            o.data<T>(), lse, d, A(scale));
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse_in,
                      double scale, Tensor& dq, Tensor& dk, Tensor& dv, KvGroups groups) {
  using A = Acc<T>;
  const Dims d = GetDims(q, v, groups, scale);
  if (d.b * d.hk * d.t == 0) return absl::OkStatus();
  LRKV_TRY(CheckGrid(d));
  const bool lse_known = true;
  // D per (batch, head, row).
  LRKV_TRY_ASSIGN(Tensor scratch, Tensor::Empty({d.b * d.h * d.t}, DTypeOf<A>::value, Device::kCuda));
  A* dsum = scratch.data<A>();
  if (UsesTensorCores<T>(d, {&dout, &q, &k, &v})) {
    return FlashBackward(dout, q, k, v, lse_in, dq, dk, dv, scratch.data<float>(), d);
  }
  A* lse = const_cast<A*>(lse_in.data<A>());
  if (d.h > 0) {
    const size_t bytes = sizeof(A) * (kBQ * d.dqk + kBQ * d.dv + kBK * Padded(d.dqk) + kBK * Padded(d.dv) +
                                      kBQ * d.dqk + kWarps * kBK);
    LRKV_TRY(PrepareSharedMemory(BackwardQueryKernel<T>, bytes, "backward (queries)", d));
    BackwardQueryKernel<T><<<Grid(d, d.h, kBQ), kBlockThreads, bytes, CurrentStream()>>>(
        dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), lse, lse_known, dsum, dq.data<T>(), d, A(scale));
    LRKV_CUDA_TRY_LAUNCH();
  }
  const size_t bytes = sizeof(A) * (2 * kBQ * d.dqk + 2 * kBQ * d.dv + kBK * Padded(d.dqk) + kBK * Padded(d.dv) +
                                    2 * kBK + 2 * kWarps * kBK);
  LRKV_TRY(PrepareSharedMemory(BackwardKeyKernel<T>, bytes, "backward (keys)", d));
  BackwardKeyKernel<T><<<Grid(d, d.hk, kBQ), kBlockThreads, bytes, CurrentStream()>>>(
      dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), lse, dsum, dk.data<T>(), dv.data<T>(), d, A(scale));
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& lse, KvGroups groups) {
  LRKV_CUDA_FLOAT_DISPATCH(q.dtype(), Forward, q, k, v, scale, o, lse, groups);
}
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& lse, double scale, Tensor& dq, Tensor& dk, Tensor& dv,
                                     KvGroups groups) {
  LRKV_CUDA_FLOAT_DISPATCH(q.dtype(), Backward, dout, q, k, v, lse, scale, dq, dk, dv, groups);
}

}  // namespace lrkv::cuda
