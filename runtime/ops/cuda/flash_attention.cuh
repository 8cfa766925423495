// Causal attention forward on tensor cores: FlashAttention-2's forward for bf16 q, k, v with fp32
// accumulation, its GEMMs as WMMA 16x16x16 fragments. attention.cu takes it for bf16 heads whose
// widths are multiples of 16 (at most 256) and keeps its SIMT kernels for everything else.
//
// A block owns kQueries = 64 query rows of one (batch, head); each of its 4 warps owns 16 of them.
// For every tile of kKeys = 64 keys the block loads K and V into shared memory, and each warp
//   1. S (16, 64) = Q_w K^T on tensor cores, into shared memory (fp32);
//   2. per row (two lanes a row, 32 columns each): scale, causal mask, the running maximum m and
//      sum l of the online softmax, P = exp(S - m) as bf16, and the row's output rescaled;
//   3. O_w (16, Dv) += P V on tensor cores, O kept in shared memory (fp32), since WMMA does not say
//      which lane holds which element of a fragment and step 2 must rescale O's rows.
// At the end O / l is written as bf16 and m + log l as the row's log-sum-exp (fp32), which the
// backward kernels read. Key tiles past the block's last row are skipped (causality); the blocks
// with the most tiles are launched first.
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

namespace lrkv::cuda::flash {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 4;
constexpr int kRows = 16;                  // query rows per warp: one WMMA tile high
constexpr int kQueries = kWarps * kRows;   // query rows per block
constexpr int kKeys = 64;                  // keys per tile
constexpr int kThreads = kWarps * 32;
constexpr int kMaxWidth = 256;             // widest head (shared memory grows with Dqk and Dv)

struct Dims {
  int64_t b, t, h, hk, dqk, dv;  // q (B, T, H, Dqk), k (B, T, Hk, Dqk), v (B, T, Hk, Dv)
  int64_t group, offset;         // query head i reads KV head (i + offset) / group
  float scale;
};

// Whether the kernel takes heads of these widths (the caller also checks bf16 and 16-byte alignment).
inline bool Supports(int64_t dqk, int64_t dv) {
  return dqk % 16 == 0 && dv % 16 == 0 && dqk > 0 && dv > 0 && dqk <= kMaxWidth && dv <= kMaxWidth;
}

// Shared memory: row strides padded by 16 bytes (bank spread; WMMA wants strides of 16 bytes and
// tiles on 32-byte boundaries), each array starting on 128 bytes.
struct Layout {
  int64_t ldq, ldk, ldv, lds, ldp, ldo;          // row strides, in elements
  size_t q, k, v, s, p, o, m, l, bytes;          // byte offsets, total
  __host__ __device__ explicit Layout(const Dims& d)
      : ldq(d.dqk + 8), ldk(d.dqk + 8), ldv(d.dv + 8), lds(kKeys + 4), ldp(kKeys + 8), ldo(d.dv + 4) {
    size_t at = 0;
    auto take = [&at](size_t n) {
      const size_t start = at;
      at += (n + 127) / 128 * 128;
      return start;
    };
    q = take(kQueries * ldq * sizeof(bf16));
    k = take(kKeys * ldk * sizeof(bf16));
    v = take(kKeys * ldv * sizeof(bf16));
    s = take(kQueries * lds * sizeof(float));
    p = take(kQueries * ldp * sizeof(bf16));
    o = take(kQueries * ldo * sizeof(float));
    m = take(kQueries * sizeof(float));
    l = take(kQueries * sizeof(float));
    bytes = at;
  }
};

// Rows [row0, row0 + rows) of head `head` of a (B, T, heads, width) bf16 tensor into
// dst[rows][ld], 8 elements (16 bytes) at a time, zeros past T. Every thread of the block takes part.
__device__ inline void LoadRows(bf16* dst, int64_t ld, const bf16* src, const Dims& d, int64_t bi, int64_t heads,
                                int64_t head, int64_t width, int64_t row0, int rows) {
  const int64_t vectors = width / 8;
  for (int64_t idx = threadIdx.x; idx < rows * vectors; idx += blockDim.x) {
    const int64_t r = idx / vectors, c = (idx % vectors) * 8, row = row0 + r;
    uint4 value = {0, 0, 0, 0};
    if (row < d.t) value = *reinterpret_cast<const uint4*>(src + ((bi * d.t + row) * heads + head) * width + c);
    *reinterpret_cast<uint4*>(dst + r * ld + c) = value;
  }
}

// The warp's C (16, n) (fp32, shared, row stride ldc) = A (16, k) B (k, n) [+ C when `accumulate`]:
// A bf16 row-major (lda); B bf16 row-major (k, n) at ldb, or, with BLayout = col_major, stored as
// its transpose (n, k) at ldb. n and k are multiples of 16.
template <typename BLayout>
__device__ void WarpGemm(const bf16* a, int64_t lda, const bf16* b, int64_t ldb, float* c, int64_t ldc, int64_t n,
                         int64_t k, bool accumulate) {
  using namespace nvcuda;
  constexpr bool b_transposed = std::is_same<BLayout, wmma::col_major>::value;
  for (int64_t j = 0; j < n; j += 16) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    if (accumulate) {
      wmma::load_matrix_sync(acc, c + j, unsigned(ldc), wmma::mem_row_major);
    } else {
      wmma::fill_fragment(acc, 0.0f);
    }
    for (int64_t kk = 0; kk < k; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, BLayout> fb;
      wmma::load_matrix_sync(fa, a + kk, unsigned(lda));
      wmma::load_matrix_sync(fb, b_transposed ? b + j * ldb + kk : b + kk * ldb + j, unsigned(ldb));
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + j, acc, unsigned(ldc), wmma::mem_row_major);
  }
}

// Step 2 for the warp's rows over the key tile at k0: lanes 2r and 2r + 1 share row r, 32 columns
// each. S becomes masked, scaled scores; P gets exp(S - m_new) in bf16; m, l and O's row are updated.
__device__ inline void OnlineSoftmax(float* s_rows, int64_t lds, bf16* p_rows, int64_t ldp, float* o_rows,
                                     int64_t ldo, float* m_rows, float* l_rows, int64_t first_row, int64_t k0,
                                     const Dims& d) {
  const int lane = threadIdx.x & 31, r = lane >> 1, half = lane & 1;
  const int64_t i = first_row + r;  // this lane's query row
  float* s = s_rows + r * lds + half * (kKeys / 2);
  float top = -INFINITY;
  for (int c = 0; c < kKeys / 2; ++c) {
    const int64_t j = k0 + half * (kKeys / 2) + c;
    s[c] = (j <= i && i < d.t) ? s[c] * d.scale : -INFINITY;
    top = fmaxf(top, s[c]);
  }
  top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
  const float m_old = m_rows[r], m_new = fmaxf(m_old, top);
  const float base = m_new == -INFINITY ? 0.0f : m_new;  // a row that has seen no key keeps p = 0
  bf16* p = p_rows + r * ldp + half * (kKeys / 2);
  float sum = 0;
  for (int c = 0; c < kKeys / 2; ++c) {
    const float e = expf(s[c] - base);
    p[c] = __float2bfloat16_rn(e);
    sum += e;
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  const float rescale = expf(m_old - base);  // 0 while m_old = -inf
  __syncwarp();                              // both lanes of the row have read m_old
  if (half == 0) m_rows[r] = m_new, l_rows[r] = l_rows[r] * rescale + sum;
  float* o = o_rows + r * ldo;
  for (int64_t c = half * (d.dv / 2); c < (half + 1) * (d.dv / 2); ++c) o[c] *= rescale;
}

// q (B, T, H, Dqk), k (B, T, Hk, Dqk), v (B, T, Hk, Dv), o (B, T, H, Dv) bf16; lse (B, H, T) fp32.
// Grid (ceil(T / kQueries), H, B), kThreads threads, Layout(d).bytes of shared memory at `smem`.
__device__ inline void Forward(unsigned char* smem, const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse,
                               Dims d) {
  const Layout lay(d);
  bf16* Qs = reinterpret_cast<bf16*>(smem + lay.q);
  bf16* Ks = reinterpret_cast<bf16*>(smem + lay.k);
  bf16* Vs = reinterpret_cast<bf16*>(smem + lay.v);
  float* S = reinterpret_cast<float*>(smem + lay.s);
  bf16* P = reinterpret_cast<bf16*>(smem + lay.p);
  float* O = reinterpret_cast<float*>(smem + lay.o);
  float* M = reinterpret_cast<float*>(smem + lay.m);
  float* L = reinterpret_cast<float*>(smem + lay.l);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t q0 = (int64_t(gridDim.x) - 1 - blockIdx.x) * kQueries;  // the longest blocks first
  const int64_t hi = blockIdx.y, bi = blockIdx.z, g = (hi + d.offset) / d.group;
  const int64_t q_last = (q0 + kQueries < d.t ? q0 + kQueries : d.t) - 1;

  LoadRows(Qs, lay.ldq, q, d, bi, d.h, hi, d.dqk, q0, kQueries);
  for (int64_t idx = threadIdx.x; idx < kQueries * lay.ldo; idx += blockDim.x) O[idx] = 0.0f;
  for (int64_t idx = threadIdx.x; idx < kQueries; idx += blockDim.x) M[idx] = -INFINITY, L[idx] = 0.0f;

  const int64_t row0 = warp * kRows;  // the warp's rows in the block's tiles
  for (int64_t k0 = 0; k0 <= q_last; k0 += kKeys) {
    __syncthreads();  // the previous tile is no longer read
    LoadRows(Ks, lay.ldk, k, d, bi, d.hk, g, d.dqk, k0, kKeys);
    LoadRows(Vs, lay.ldv, v, d, bi, d.hk, g, d.dv, k0, kKeys);
    __syncthreads();
    WarpGemm<nvcuda::wmma::col_major>(Qs + row0 * lay.ldq, lay.ldq, Ks, lay.ldk, S + row0 * lay.lds, lay.lds, kKeys,
                                      d.dqk, false);
    __syncwarp();
    OnlineSoftmax(S + row0 * lay.lds, lay.lds, P + row0 * lay.ldp, lay.ldp, O + row0 * lay.ldo, lay.ldo, M + row0,
                  L + row0, q0 + row0, k0, d);
    __syncwarp();
    WarpGemm<nvcuda::wmma::row_major>(P + row0 * lay.ldp, lay.ldp, Vs, lay.ldv, O + row0 * lay.ldo, lay.ldo, d.dv,
                                      kKeys, true);
  }
  __syncwarp();
  const int r = lane >> 1, half = lane & 1;
  const int64_t i = q0 + row0 + r;
  if (i >= d.t) return;
  const float l = L[row0 + r], inv = 1.0f / l;
  const float* orow = O + (row0 + r) * lay.ldo;
  bf16* out = o + ((bi * d.t + i) * d.h + hi) * d.dv;
  for (int64_t c = half * (d.dv / 2); c < (half + 1) * (d.dv / 2); ++c) out[c] = __float2bfloat16_rn(orow[c] * inv);
  if (half == 0) lse[(bi * d.h + hi) * d.t + i] = M[row0 + r] + logf(l);
}

}  // namespace lrkv::cuda::flash
