// Causal attention on tensor cores: FlashAttention-2's forward and a deterministic backward for bf16
// q, k, v with fp32 accumulation, every GEMM as WMMA 16x16x16 fragments. attention.cu takes these
// kernels for bf16 heads whose widths they support (Supports) and keeps its SIMT kernels otherwise.
//
// Every kernel's block has 4 warps and owns 64 rows (queries, or keys) of one (batch, head); each warp
// owns 16 of them and walks tiles of 64 of the other side. Tiles and accumulators live in shared
// memory: WMMA does not say which lane holds which element of a fragment, and the softmax works on
// rows, so each GEMM's result goes through shared memory (fp32), where two lanes own a row.
//
// Forward, per key tile: S = Q K^T; the online softmax (running maximum m, sum l per row), P =
// exp(S - m) in bf16 and O's rows rescaled; O += P V. O / l is written as bf16 and m + log l as the
// row's log-sum-exp (fp32), which the backward reads.
//
// Backward, without atomics (a run is bit-reproducible) in two kernels:
//   queries: per query tile, a first pass over the key tiles forms D = rowsum(P o dP) (dP = dO V^T;
//            the interface passes no O for dO . O), a second dS = P o (dP - D) scale and dQ += dS K;
//   keys:    per key tile of a KV head, over the query tiles of every local query head of its group,
//            P^T, dS^T again from K Q^T and V dO^T and the queries' D, dV += P^T dO, dK += dS^T Q.
// Query tiles with no key a block sees are skipped (causality); the longest blocks start first.
//
// This file is compiled by nvcc (attention.cu) and, for tests on a machine without a GPU, by the
// host compiler under tests/testing/cuda_on_cpu.h (tests/unit/flash_attention_on_cpu_test.cc): it
// uses only what that header emulates, and takes its shared memory as an argument.
#pragma once

#ifndef CUDA_ON_CPU
#include <cuda_bf16.h>
#include <mma.h>
#endif

#include <cstddef>
#include <cstdint>
#include <type_traits>

// `#pragma unroll` for nvcc; nothing for the host compiler, which does not know it.
#ifdef __CUDACC__
#define LRKV_UNROLL _Pragma("unroll")
#else
#define LRKV_UNROLL
#endif

namespace lrkv::cuda::flash {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 4;
constexpr int kRows = 16;                 // rows per warp: one WMMA tile high
constexpr int kBlockRows = kWarps * kRows;  // rows per block
constexpr int kTile = 64;                 // columns per tile of the other side (keys, or queries)
constexpr int kThreads = kWarps * 32;
constexpr size_t kSm90SharedBytes = 232448;  // shared memory a block may opt in to on sm_90 (227 KiB)

struct Dims {
  int64_t b, t, h, hk, dqk, dv;  // q (B, T, H, Dqk), k (B, T, Hk, Dqk), v (B, T, Hk, Dv)
  int64_t group, offset;         // query head i reads KV head (i + offset) / group
  float scale;

  // This rank's query heads [FirstQueryHead(g), EndQueryHead(g)) read KV head g.
  __host__ __device__ int64_t FirstQueryHead(int64_t g) const {
    return g * group - offset > 0 ? g * group - offset : 0;
  }
  __host__ __device__ int64_t EndQueryHead(int64_t g) const {
    return (g + 1) * group - offset < h ? (g + 1) * group - offset : h;
  }
};

// Shared memory is carved into arrays starting on 128 bytes; without a base it only counts bytes.
// Row strides are padded by 16 bytes (banks; WMMA wants strides of 16 bytes, tiles on 32).
class Arena {
 public:
  __host__ __device__ explicit Arena(unsigned char* base) : base_(base) {}
  template <typename T>
  __host__ __device__ T* Take(int64_t n) {
    T* p = base_ == nullptr ? nullptr : reinterpret_cast<T*>(base_ + at_);
    at_ += (size_t(n) * sizeof(T) + 127) / 128 * 128;
    return p;
  }
  __host__ __device__ size_t bytes() const { return at_; }

 private:
  unsigned char* base_;
  size_t at_ = 0;
};
__host__ __device__ inline int64_t Ld(int64_t width, bf16*) { return width + 8; }
__host__ __device__ inline int64_t Ld(int64_t width, float*) { return width + 4; }

// A (rows, width) array in shared memory and its row stride.
template <typename T>
struct Tile {
  T* at;
  int64_t ld;
  __host__ __device__ Tile(Arena& arena, int64_t rows, int64_t width)
      : at(nullptr), ld(Ld(width, static_cast<T*>(nullptr))) {
    at = arena.Take<T>(rows * ld);
  }
  __device__ T* Row(int64_t r) const { return at + r * ld; }
};

// Each kernel's shared memory.
struct ForwardTiles {
  Arena arena;
  Tile<bf16> q, k, v, p;
  Tile<float> s, o;
  float *m, *l;
  __host__ __device__ ForwardTiles(unsigned char* base, const Dims& d)
      : arena(base), q(arena, kBlockRows, d.dqk), k(arena, kTile, d.dqk), v(arena, kTile, d.dv),
        p(arena, kBlockRows, kTile), s(arena, kBlockRows, kTile), o(arena, kBlockRows, d.dv),
        m(arena.Take<float>(kBlockRows)), l(arena.Take<float>(kBlockRows)) {}
};
struct QueryGradTiles {
  Arena arena;
  Tile<bf16> q, dout, k, v, ds;
  Tile<float> s, dp, dq;
  float *lse, *dsum;
  __host__ __device__ QueryGradTiles(unsigned char* base, const Dims& d)
      : arena(base), q(arena, kBlockRows, d.dqk), dout(arena, kBlockRows, d.dv), k(arena, kTile, d.dqk),
        v(arena, kTile, d.dv), ds(arena, kBlockRows, kTile), s(arena, kBlockRows, kTile), dp(arena, kBlockRows, kTile),
        dq(arena, kBlockRows, d.dqk), lse(arena.Take<float>(kBlockRows)), dsum(arena.Take<float>(kBlockRows)) {}
};
struct KeyGradTiles {
  Arena arena;
  Tile<bf16> k, v, q, dout, p, ds;
  Tile<float> s, dp, dk, dv;
  float *lse, *dsum;
  __host__ __device__ KeyGradTiles(unsigned char* base, const Dims& d)
      : arena(base), k(arena, kBlockRows, d.dqk), v(arena, kBlockRows, d.dv), q(arena, kTile, d.dqk),
        dout(arena, kTile, d.dv), p(arena, kBlockRows, kTile), ds(arena, kBlockRows, kTile),
        s(arena, kBlockRows, kTile), dp(arena, kBlockRows, kTile), dk(arena, kBlockRows, d.dqk),
        dv(arena, kBlockRows, d.dv), lse(arena.Take<float>(kTile)), dsum(arena.Take<float>(kTile)) {}
};

// Whether these kernels take heads of these widths: multiples of 16 whose tiles fit the shared memory
// a block may have on the device (the caller also checks bf16 and 16-byte alignment). On sm_90 up to
// Dqk 192 with Dv 128 (MLA's); a device with less (sm_80: 163 KiB) takes narrower heads.
inline bool Supports(int64_t dqk, int64_t dv, size_t max_shared_bytes) {
  if (dqk <= 0 || dv <= 0 || dqk % 16 != 0 || dv % 16 != 0) return false;
  const Dims d{1, 1, 1, 1, dqk, dv, 1, 0, 1.0f};
  return ForwardTiles(nullptr, d).arena.bytes() <= max_shared_bytes &&
         QueryGradTiles(nullptr, d).arena.bytes() <= max_shared_bytes &&
         KeyGradTiles(nullptr, d).arena.bytes() <= max_shared_bytes;
}

// Rows [row0, row0 + rows) of head `head` of a (B, T, heads, width) bf16 tensor into the tile, 8
// elements (16 bytes) at a time, zeros past T. Every thread of the block takes part.
__device__ inline void LoadRows(const Tile<bf16>& dst, const bf16* src, const Dims& d, int64_t bi, int64_t heads,
                                int64_t head, int64_t width, int64_t row0, int rows) {
  const int64_t vectors = width / 8;
  for (int64_t idx = threadIdx.x; idx < rows * vectors; idx += blockDim.x) {
    const int64_t r = idx / vectors, c = (idx % vectors) * 8, row = row0 + r;
    uint4 value = {0, 0, 0, 0};
    if (row < d.t) value = *reinterpret_cast<const uint4*>(src + ((bi * d.t + row) * heads + head) * width + c);
    *reinterpret_cast<uint4*>(dst.Row(r) + c) = value;
  }
}

// The tile's rows [0, rows) that exist (row0 + r < T) into head `head` of a (B, T, heads, width)
// bf16 tensor, each divided by divisor[r] when given. Every thread of the block takes part.
__device__ inline void StoreRows(bf16* dst, const Tile<float>& src, const float* divisor, const Dims& d, int64_t bi,
                                 int64_t heads, int64_t head, int64_t width, int64_t row0, int rows) {
  for (int64_t idx = threadIdx.x; idx < rows * width; idx += blockDim.x) {
    const int64_t r = idx / width, c = idx % width, row = row0 + r;
    if (row >= d.t) continue;
    const float x = src.Row(r)[c];
    dst[((bi * d.t + row) * heads + head) * width + c] = __float2bfloat16_rn(divisor ? x / divisor[r] : x);
  }
}

__device__ inline void Fill(float* p, int64_t n, float value) {
  for (int64_t idx = threadIdx.x; idx < n; idx += blockDim.x) p[idx] = value;
}

// Per row of a (B, H, T) fp32 tensor at head `head`: rows [row0, row0 + kTile) into dst, 0 past T.
__device__ inline void LoadRowStats(float* dst, const float* src, const Dims& d, int64_t bi, int64_t head,
                                    int64_t row0) {
  for (int64_t idx = threadIdx.x; idx < kTile; idx += blockDim.x) {
    const int64_t row = row0 + idx;
    dst[idx] = row < d.t ? src[(bi * d.h + head) * d.t + row] : 0.0f;
  }
}

// The warp's C (16, n) (fp32, shared) = A (16, k) B (k, n) [+ C when `accumulate`]: A bf16
// row-major; B bf16 row-major (k, n), or, with BLayout = col_major, stored as its transpose (n, k).
// n and k are multiples of 16. Up to kGroup column tiles accumulate at once, so that each of A's
// fragments is read from shared memory once per group rather than once per tile.
template <typename BLayout>
__device__ void WarpGemm(const bf16* a, int64_t lda, const bf16* b, int64_t ldb, float* c, int64_t ldc, int64_t n,
                         int64_t k, bool accumulate) {
  using namespace nvcuda;
  constexpr int kGroup = 4;
  constexpr bool b_transposed = std::is_same<BLayout, wmma::col_major>::value;
  for (int64_t j0 = 0; j0 < n; j0 += 16 * kGroup) {
    const int64_t tiles = (n - j0) / 16 < kGroup ? (n - j0) / 16 : kGroup;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kGroup];
    LRKV_UNROLL
    for (int t = 0; t < kGroup; ++t) {
      if (t < tiles && accumulate) wmma::load_matrix_sync(acc[t], c + j0 + 16 * t, unsigned(ldc), wmma::mem_row_major);
      if (t < tiles && !accumulate) wmma::fill_fragment(acc[t], 0.0f);
    }
    for (int64_t kk = 0; kk < k; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
      wmma::load_matrix_sync(fa, a + kk, unsigned(lda));
      LRKV_UNROLL
      for (int t = 0; t < kGroup; ++t) {
        if (t < tiles) {
          const int64_t j = j0 + 16 * t;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, BLayout> fb;
          wmma::load_matrix_sync(fb, b_transposed ? b + j * ldb + kk : b + kk * ldb + j, unsigned(ldb));
          wmma::mma_sync(acc[t], fa, fb, acc[t]);
        }
      }
    }
    LRKV_UNROLL
    for (int t = 0; t < kGroup; ++t) {
      if (t < tiles) wmma::store_matrix_sync(c + j0 + 16 * t, acc[t], unsigned(ldc), wmma::mem_row_major);
    }
  }
}
// The warp's rows [row0, row0 + 16) of C = A B^T (B's tile holds B as rows) or += A B.
__device__ inline void WarpTimesTransposed(const Tile<bf16>& a, int64_t row0, const Tile<bf16>& b,
                                           const Tile<float>& c, int64_t n, int64_t k) {
  WarpGemm<nvcuda::wmma::col_major>(a.Row(row0), a.ld, b.at, b.ld, c.Row(row0), c.ld, n, k, false);
}
__device__ inline void WarpAddProduct(const Tile<bf16>& a, int64_t row0, const Tile<bf16>& b, const Tile<float>& c,
                                      int64_t n, int64_t k) {
  WarpGemm<nvcuda::wmma::row_major>(a.Row(row0), a.ld, b.at, b.ld, c.Row(row0), c.ld, n, k, true);
}

// Two lanes a row: this lane's row of the warp's 16 and its half of a tile's 64 columns, walked in a
// rotated order, Column(0), Column(1), ...: rows lie 68 words apart (4 banks), so in the plain order
// the 32 lanes would hit 8 banks; rotated by r + 16 half, they hit 32.
struct LaneSlice {
  int r, half, c0;
  __device__ LaneSlice() : r((threadIdx.x & 31) >> 1), half(threadIdx.x & 1), c0((threadIdx.x & 1) * (kTile / 2)) {}
  __device__ int Column(int step) const { return (step + r + 16 * half) & (kTile / 2 - 1); }
  __device__ float PairSum(float x) const { return x + __shfl_xor_sync(0xffffffffu, x, 1); }
};

// Query i's probability of key j from its scaled score and log-sum-exp; 0 where causality hides it.
__device__ inline float Probability(float score, int64_t i, int64_t j, float lse, const Dims& d) {
  return (j <= i && i < d.t) ? expf(score * d.scale - lse) : 0.0f;
}

// ---------------------------------------------------------------------------------------------
// Forward. q, k, v, o bf16; lse (B, H, T) fp32. Grid (ceil(T / 64), H, B).
__device__ inline void Forward(unsigned char* smem, const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse,
                               Dims d) {
  const ForwardTiles t(smem, d);
  const int64_t row0 = (threadIdx.x >> 5) * kRows;                          // the warp's rows
  const int64_t q0 = (int64_t(gridDim.x) - 1 - blockIdx.x) * kBlockRows;    // the longest blocks first
  const int64_t hi = blockIdx.y, bi = blockIdx.z, g = (hi + d.offset) / d.group;
  const int64_t q_last = (q0 + kBlockRows < d.t ? q0 + kBlockRows : d.t) - 1;
  LoadRows(t.q, q, d, bi, d.h, hi, d.dqk, q0, kBlockRows);
  Fill(t.o.at, kBlockRows * t.o.ld, 0.0f);
  Fill(t.m, kBlockRows, -INFINITY);
  Fill(t.l, kBlockRows, 0.0f);
  const LaneSlice me;
  const int64_t i = q0 + row0 + me.r;  // this lane's query
  for (int64_t k0 = 0; k0 <= q_last; k0 += kTile) {
    __syncthreads();  // the previous tile is no longer read
    LoadRows(t.k, k, d, bi, d.hk, g, d.dqk, k0, kTile);
    LoadRows(t.v, v, d, bi, d.hk, g, d.dv, k0, kTile);
    __syncthreads();
    WarpTimesTransposed(t.q, row0, t.k, t.s, kTile, d.dqk);
    __syncwarp();
    // The online softmax over this row's new scores.
    float* s = t.s.Row(row0 + me.r) + me.c0;
    float top = -INFINITY;
    for (int step = 0; step < kTile / 2; ++step) {
      const int c = me.Column(step);
      s[c] = (k0 + me.c0 + c <= i && i < d.t) ? s[c] * d.scale : -INFINITY;
      top = fmaxf(top, s[c]);
    }
    top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
    const float m_old = t.m[row0 + me.r], m_new = fmaxf(m_old, top);
    const float base = m_new == -INFINITY ? 0.0f : m_new;  // a row that has seen no key keeps p = 0
    bf16* p = t.p.Row(row0 + me.r) + me.c0;
    float sum = 0;
    for (int step = 0; step < kTile / 2; ++step) {
      const int c = me.Column(step);
      const float e = expf(s[c] - base);
      p[c] = __float2bfloat16_rn(e);
      sum += e;
    }
    sum = me.PairSum(sum);
    const float rescale = expf(m_old - base);  // 0 while m_old = -inf
    __syncwarp();                              // both lanes of the row have read m_old
    if (me.half == 0) t.m[row0 + me.r] = m_new, t.l[row0 + me.r] = t.l[row0 + me.r] * rescale + sum;
    float* orow = t.o.Row(row0 + me.r);
    for (int64_t c = me.half * (d.dv / 2); c < (me.half + 1) * (d.dv / 2); ++c) orow[c] *= rescale;
    __syncwarp();
    WarpAddProduct(t.p, row0, t.v, t.o, d.dv, kTile);
  }
  __syncthreads();
  StoreRows(o, t.o, t.l, d, bi, d.h, hi, d.dv, q0, kBlockRows);
  for (int64_t idx = threadIdx.x; idx < kBlockRows && q0 + idx < d.t; idx += blockDim.x) {
    lse[(bi * d.h + hi) * d.t + q0 + idx] = t.m[idx] + logf(t.l[idx]);
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, queries: dq bf16 and D = rowsum(P o dP) into dsum (B, H, T) fp32, which the keys'
// kernel then reads. Grid (ceil(T / 64), H, B).
__device__ inline void BackwardQueries(unsigned char* smem, const bf16* dout, const bf16* q, const bf16* k,
                                       const bf16* v, const float* lse, float* dsum, bf16* dq, Dims d) {
  const QueryGradTiles t(smem, d);
  const int64_t row0 = (threadIdx.x >> 5) * kRows;
  const int64_t q0 = (int64_t(gridDim.x) - 1 - blockIdx.x) * kBlockRows;
  const int64_t hi = blockIdx.y, bi = blockIdx.z, g = (hi + d.offset) / d.group;
  const int64_t q_last = (q0 + kBlockRows < d.t ? q0 + kBlockRows : d.t) - 1;
  LoadRows(t.q, q, d, bi, d.h, hi, d.dqk, q0, kBlockRows);
  LoadRows(t.dout, dout, d, bi, d.h, hi, d.dv, q0, kBlockRows);
  LoadRowStats(t.lse, lse, d, bi, hi, q0);
  Fill(t.dsum, kBlockRows, 0.0f);
  Fill(t.dq.at, kBlockRows * t.dq.ld, 0.0f);
  const LaneSlice me;
  const int64_t i = q0 + row0 + me.r;
  for (int pass = 0; pass < 2; ++pass) {  // 0: D; 1: dS and dQ
    for (int64_t k0 = 0; k0 <= q_last; k0 += kTile) {
      __syncthreads();
      LoadRows(t.k, k, d, bi, d.hk, g, d.dqk, k0, kTile);
      LoadRows(t.v, v, d, bi, d.hk, g, d.dv, k0, kTile);
      __syncthreads();
      WarpTimesTransposed(t.q, row0, t.k, t.s, kTile, d.dqk);     // S
      WarpTimesTransposed(t.dout, row0, t.v, t.dp, kTile, d.dv);  // dP = dO V^T
      __syncwarp();
      const float *s = t.s.Row(row0 + me.r) + me.c0, *dp = t.dp.Row(row0 + me.r) + me.c0;
      const float row_lse = t.lse[row0 + me.r];
      if (pass == 0) {
        float sum = 0;
        for (int step = 0; step < kTile / 2; ++step) {
          const int c = me.Column(step);
          sum += Probability(s[c], i, k0 + me.c0 + c, row_lse, d) * dp[c];
        }
        sum = me.PairSum(sum);
        if (me.half == 0) t.dsum[row0 + me.r] += sum;
        continue;
      }
      const float row_d = t.dsum[row0 + me.r];
      bf16* ds = t.ds.Row(row0 + me.r) + me.c0;
      for (int step = 0; step < kTile / 2; ++step) {
        const int c = me.Column(step);
        ds[c] = __float2bfloat16_rn(Probability(s[c], i, k0 + me.c0 + c, row_lse, d) * (dp[c] - row_d) * d.scale);
      }
      __syncwarp();
      WarpAddProduct(t.ds, row0, t.k, t.dq, d.dqk, kTile);  // dQ += dS K
    }
  }
  __syncthreads();
  StoreRows(dq, t.dq, nullptr, d, bi, d.h, hi, d.dqk, q0, kBlockRows);
  for (int64_t idx = threadIdx.x; idx < kBlockRows && q0 + idx < d.t; idx += blockDim.x) {
    dsum[(bi * d.h + hi) * d.t + q0 + idx] = t.dsum[idx];
  }
}

// Backward, keys: dk, dv bf16 of KV head blockIdx.y, summed over the local query heads of its group
// (zero if it has none). Grid (ceil(T / 64), Hk, B).
__device__ inline void BackwardKeys(unsigned char* smem, const bf16* dout, const bf16* q, const bf16* k,
                                    const bf16* v, const float* lse, const float* dsum, bf16* dk, bf16* dv, Dims d) {
  const KeyGradTiles t(smem, d);
  const int64_t row0 = (threadIdx.x >> 5) * kRows;
  const int64_t kb = int64_t(blockIdx.x) * kBlockRows;  // the first blocks see the most queries
  const int64_t g = blockIdx.y, bi = blockIdx.z;
  LoadRows(t.k, k, d, bi, d.hk, g, d.dqk, kb, kBlockRows);
  LoadRows(t.v, v, d, bi, d.hk, g, d.dv, kb, kBlockRows);
  Fill(t.dk.at, kBlockRows * t.dk.ld, 0.0f);
  Fill(t.dv.at, kBlockRows * t.dv.ld, 0.0f);
  const int64_t first = d.FirstQueryHead(g), last = d.EndQueryHead(g);
  const LaneSlice me;
  const int64_t j = kb + row0 + me.r;  // this lane's key
  for (int64_t hi = first; hi < last; ++hi) {
    for (int64_t q0 = kb; q0 < d.t; q0 += kTile) {
      __syncthreads();
      LoadRows(t.q, q, d, bi, d.h, hi, d.dqk, q0, kTile);
      LoadRows(t.dout, dout, d, bi, d.h, hi, d.dv, q0, kTile);
      LoadRowStats(t.lse, lse, d, bi, hi, q0);
      LoadRowStats(t.dsum, dsum, d, bi, hi, q0);
      __syncthreads();
      WarpTimesTransposed(t.k, row0, t.q, t.s, kTile, d.dqk);     // S^T = K Q^T
      WarpTimesTransposed(t.v, row0, t.dout, t.dp, kTile, d.dv);  // dP^T = V dO^T
      __syncwarp();
      const float *s = t.s.Row(row0 + me.r) + me.c0, *dp = t.dp.Row(row0 + me.r) + me.c0;
      bf16 *p = t.p.Row(row0 + me.r) + me.c0, *ds = t.ds.Row(row0 + me.r) + me.c0;
      for (int step = 0; step < kTile / 2; ++step) {
        const int c = me.Column(step);
        const int64_t col = me.c0 + c;
        const float prob = Probability(s[c], q0 + col, j, t.lse[col], d);
        p[c] = __float2bfloat16_rn(prob);
        ds[c] = __float2bfloat16_rn(prob * (dp[c] - t.dsum[col]) * d.scale);
      }
      __syncwarp();
      WarpAddProduct(t.p, row0, t.dout, t.dv, d.dv, kTile);  // dV += P^T dO
      WarpAddProduct(t.ds, row0, t.q, t.dk, d.dqk, kTile);   // dK += dS^T Q
    }
  }
  __syncthreads();
  StoreRows(dk, t.dk, nullptr, d, bi, d.hk, g, d.dqk, kb, kBlockRows);
  StoreRows(dv, t.dv, nullptr, d, bi, d.hk, g, d.dv, kb, kBlockRows);
}

}  // namespace lrkv::cuda::flash
