// The CUDA backend's SIMT attention kernels (every dtype and head width; bf16 heads that
// flash_attention.cuh supports take its tensor-core kernels instead): attention.cu's description
// says what they compute. The bodies take their dynamic shared memory as an argument; attention.cu's
// __global__ entry points hand over their extern __shared__ arrays. Compiled by nvcc (through
// attention.cu) and, for tests on a machine without a GPU, by the host compiler under
// tests/testing/cuda_on_cpu.h (tests/unit/cuda_kernels_on_cpu_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/cuda/device_math.cuh"
#include "runtime/ops/cuda/flash_attention.cuh"  // Dims, LRKV_UNROLL

namespace lrkv::cuda::simt {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kBQ = kWarps * kRowsPerWarp;  // query rows (forward, dq) or key rows (dk/dv) per block
constexpr int kBK = 32;                     // keys (forward, dq) or queries (dk/dv) per tile: one per lane
constexpr int kBlockThreads = kWarps * 32;

// One shape for both kernel families; the SIMT kernels take the scale in their accumulator type
// beside it.
using Dims = flash::Dims;

// Padded row stride for tiles read row-per-lane (odd, so that lanes hit distinct banks).
__host__ __device__ inline int64_t Padded(int64_t d) { return d | 1; }

// The dynamic shared memory each kernel's block needs (A = Acc<T>), as laid out at its top.
template <typename A>
size_t ForwardBytes(const Dims& d) {
  return sizeof(A) * (kBQ * d.dqk + kBK * Padded(d.dqk) + kBK * d.dv + kBQ * d.dv + kWarps * kBK);
}
template <typename A>
size_t BackwardQueriesBytes(const Dims& d) {
  return sizeof(A) * (kBQ * d.dqk + kBQ * d.dv + kBK * Padded(d.dqk) + kBK * Padded(d.dv) + kBQ * d.dqk + kWarps * kBK);
}
template <typename A>
size_t BackwardKeysBytes(const Dims& d) {
  return sizeof(A) *
         (2 * kBQ * d.dqk + 2 * kBQ * d.dv + kBK * Padded(d.dqk) + kBK * Padded(d.dv) + 2 * kBK + 2 * kWarps * kBK);
}

// A query-side block's rows [q0, q_last] of head hi (reading KV head g) of sequence bi.
struct QueryBlock {
  int64_t q0, hi, bi, g, q_last;
};
__device__ inline QueryBlock ThisQueryBlock(const Dims& d) {
  const int64_t q0 = int64_t(blockIdx.x) * kBQ, hi = blockIdx.y;
  return {q0, hi, int64_t(blockIdx.z), (hi + d.offset) / d.group, min(d.t, q0 + kBQ) - 1};
}

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
__device__ void Forward(unsigned char* smem_raw, const T* __restrict__ q, const T* __restrict__ k,
                        const T* __restrict__ v, T* __restrict__ o, Acc<T>* __restrict__ lse, Dims d, Acc<T> scale) {
  using A = Acc<T>;
  A* smem = reinterpret_cast<A*>(smem_raw);
  const int64_t ks = Padded(d.dqk);
  A* Qs = smem;
  A* Ks = Qs + kBQ * d.dqk;
  A* Vs = Ks + kBK * ks;
  A* Os = Vs + kBK * d.dv;
  A* Ps = Os + kBQ * d.dv;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const QueryBlock blk = ThisQueryBlock(d);
  const int64_t q0 = blk.q0, hi = blk.hi, bi = blk.bi, g = blk.g, q_last = blk.q_last;

  LoadTile(Qs, d.dqk, q, d, bi, d.h, hi, d.dqk, q0, kBQ, scale);
  for (int64_t idx = threadIdx.x; idx < kBQ * d.dv; idx += blockDim.x) Os[idx] = A(0);
  A m[kRowsPerWarp], l[kRowsPerWarp];
  LRKV_UNROLL
  for (int rr = 0; rr < kRowsPerWarp; ++rr) m[rr] = -INFINITY, l[rr] = 0;

  for (int64_t k0 = 0; k0 <= q_last; k0 += kBK) {
    __syncthreads();  // the previous tile is no longer read
    LoadTile(Ks, ks, k, d, bi, d.hk, g, d.dqk, k0, kBK, A(1));
    LoadTile(Vs, d.dv, v, d, bi, d.hk, g, d.dv, k0, kBK, A(1));
    __syncthreads();
    LRKV_UNROLL
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
  LRKV_UNROLL
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
__device__ void BackwardQueries(unsigned char* smem_raw, const T* __restrict__ dout, const T* __restrict__ q,
                                const T* __restrict__ k, const T* __restrict__ v, Acc<T>* __restrict__ lse,
                                bool lse_known, Acc<T>* __restrict__ dsum, T* __restrict__ dq, Dims d, Acc<T> scale) {
  using A = Acc<T>;
  A* smem = reinterpret_cast<A*>(smem_raw);
  const int64_t ks = Padded(d.dqk), vs = Padded(d.dv);
  A* Qs = smem;
  A* dOs = Qs + kBQ * d.dqk;
  A* Ks = dOs + kBQ * d.dv;
  A* Vs = Ks + kBK * ks;
  A* dQs = Vs + kBK * vs;
  A* Ps = dQs + kBQ * d.dqk;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const QueryBlock blk = ThisQueryBlock(d);
  const int64_t q0 = blk.q0, hi = blk.hi, bi = blk.bi, g = blk.g, q_last = blk.q_last;

  LoadTile(Qs, d.dqk, q, d, bi, d.h, hi, d.dqk, q0, kBQ, scale);
  LoadTile(dOs, d.dv, dout, d, bi, d.h, hi, d.dv, q0, kBQ, A(1));
  for (int64_t idx = threadIdx.x; idx < kBQ * d.dqk; idx += blockDim.x) dQs[idx] = A(0);
  A row_lse[kRowsPerWarp], row_d[kRowsPerWarp];
  LRKV_UNROLL
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t i = q0 + warp + rr * kWarps;
    row_lse[rr] = lse_known && i < d.t ? lse[(bi * d.h + hi) * d.t + i] : A(0);
    row_d[rr] = 0;
  }

  // pass 0: the log-sum-exp, when the forward could not store it; pass 1: D; pass 2: dq.
  for (int pass = lse_known ? 1 : 0; pass < 3; ++pass) {
    A m[kRowsPerWarp], l[kRowsPerWarp];
    LRKV_UNROLL
    for (int rr = 0; rr < kRowsPerWarp; ++rr) m[rr] = -INFINITY, l[rr] = 0;
    for (int64_t k0 = 0; k0 <= q_last; k0 += kBK) {
      __syncthreads();
      LoadTile(Ks, ks, k, d, bi, d.hk, g, d.dqk, k0, kBK, A(1));
      if (pass > 0) LoadTile(Vs, vs, v, d, bi, d.hk, g, d.dv, k0, kBK, A(1));
      __syncthreads();
      LRKV_UNROLL
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
      LRKV_UNROLL
      for (int rr = 0; rr < kRowsPerWarp; ++rr) row_lse[rr] = m[rr] + Log(l[rr]);
    }
  }
  LRKV_UNROLL
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
__device__ void BackwardKeys(unsigned char* smem_raw, const T* __restrict__ dout, const T* __restrict__ q,
                             const T* __restrict__ k, const T* __restrict__ v, const Acc<T>* __restrict__ lse,
                             const Acc<T>* __restrict__ dsum, T* __restrict__ dk, T* __restrict__ dv, Dims d,
                             Acc<T> scale) {
  using A = Acc<T>;
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
      LRKV_UNROLL
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

}  // namespace
}  // namespace lrkv::cuda::simt
