// C (m, n) = C0 + A (m, k) B (k, n) for the decoding kernels' small tiles (a 64-position chunk against
// one head's 128 columns, say), where a library GEMM's per-call cost and packing are most of the
// time. Blocks of kTileRows rows of C (kTileRowsWide where those divide m) by two vectors of
// columns stay in registers for the whole inner dimension: each row of B is loaded once per block
// and used by every row in it, each entry of A is broadcast once. A may be stored transposed
// (Tile::a_step), as a tile of scores with a column per query head is read by the product after
// it. On one Zen 5 core (AVX-512) the LRKV key rebuild's shape (M 64, N 128, K 51) ran at about 240
// GFLOP/s this way, against about 180 for oneDNN's sgemm (copy of C included) and the core's
// large-SGEMM rate of about 235. Columns past the last whole vector are summed one at a
// time: callers pad B to whole vectors where that matters.
#pragma once

#include <cstdint>

#include "runtime/ops/cpu/simd_vec.h"

namespace lrkv::cpu {

// Rows of C per register block, by the target's vector registers (simd_vec.h): blocks of R rows by
// two vectors keep 2R accumulators, two rows of B and a broadcast in registers.
#if defined(__AVX512F__)
// 32 registers: 8 x 2 accumulators; 12 x 2 where 12 divides m, 14 loads per 24 FMAs (MQA's 12
// heads: 240 against 165 GFLOP/s on one Zen 5 core as a block of 8 and one of 4).
constexpr int kTileRows = 8;
constexpr int kTileRowsWide = 12;
#else
// 16 registers: 6 x 2 accumulators. On one Zen 3 core (AVX2), M 48, N 128, K 51: 93 GFLOP/s, against
// 47 for 4 rows (too few accumulators to cover the FMAs' latency) and 59 for 8 (spilled).
constexpr int kTileRows = 6;
constexpr int kTileRowsWide = 6;
#endif

// C = C0 + A B, row-major with row strides; C0 may be C itself. The decoding kernels' operands.
template <typename T>
struct Tile {
  const T* a;   // (m, k)
  int64_t lda;
  const T* b;   // (k, n)
  int64_t ldb;
  const T* c0;  // (m, n): C's starting values
  int64_t ldc0;
  T* c;         // (m, n)
  int64_t ldc;
  int64_t n, k;
  int64_t a_step = 1;  // A's column stride: 1, or with lda 1 A stored transposed, (k, m)
  Tile Below(int64_t rows) const {  // the same product from row `rows` on
    return {a + rows * lda, lda, b, ldb, c0 + rows * ldc0, ldc0, c + rows * ldc, ldc, n, k, a_step};
  }
};

namespace register_tile {

// R rows of C, columns [e, e + C vectors). Every vector is loaded on its own: copying a row's C
// vectors as one array made GCC 12 keep the accumulators in memory (72 GFLOP/s instead of 228).
// The Tile is passed by value: through a reference the loop ran 10% slower.
template <typename T, int R, int C>
inline void Block(const Tile<T> t, int64_t e) {
  constexpr int64_t kLanes = kSimdLanes<T>;
  SimdVec<T> acc[R][C];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < C; ++v) acc[i][v] = LoadVec(t.c0 + i * t.ldc0 + e + v * kLanes);
  for (int64_t j = 0; j < t.k; ++j) {
    SimdVec<T> row[C];
    for (int v = 0; v < C; ++v) row[v] = LoadVec(t.b + j * t.ldb + e + v * kLanes);
    const T* aj = t.a + j * t.a_step;  // A's column j
    for (int i = 0; i < R; ++i) {
      const T x = aj[i * t.lda];
      for (int v = 0; v < C; ++v) acc[i][v] += x * row[v];
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < C; ++v) StoreVec(t.c + i * t.ldc + e + v * kLanes, acc[i][v]);
}

// R rows of C, every column.
template <typename T, int R>
void Rows(const Tile<T> t) {
  constexpr int64_t kLanes = kSimdLanes<T>;
  int64_t e = 0;
  for (; e + 2 * kLanes <= t.n; e += 2 * kLanes) Block<T, R, 2>(t, e);
  if (e + kLanes <= t.n) Block<T, R, 1>(t, e), e += kLanes;
  for (; e < t.n; ++e)
    for (int i = 0; i < R; ++i) {
      T sum = t.c0[i * t.ldc0 + e];
      for (int64_t j = 0; j < t.k; ++j) sum += t.a[i * t.lda + j * t.a_step] * t.b[j * t.ldb + e];
      t.c[i * t.ldc + e] = sum;
    }
}

}  // namespace register_tile

// C (m, n) = C0 + A B.
template <typename T>
void TileProduct(int64_t m, const Tile<T>& t) {
  using register_tile::Rows;
  int64_t i = 0;
  if (m % kTileRowsWide == 0) {
    for (; i < m; i += kTileRowsWide) Rows<T, kTileRowsWide>(t.Below(i));
    return;
  }
  for (; i + kTileRows <= m; i += kTileRows) Rows<T, kTileRows>(t.Below(i));
  const Tile<T> last = t.Below(i);
  switch (m - i) {  // the last rows, one block of them
    case 7: Rows<T, 7>(last); break;
    case 6: Rows<T, 6>(last); break;
    case 5: Rows<T, 5>(last); break;
    case 4: Rows<T, 4>(last); break;
    case 3: Rows<T, 3>(last); break;
    case 2: Rows<T, 2>(last); break;
    case 1: Rows<T, 1>(last); break;
    default: break;
  }
  static_assert(kTileRows <= 8, "the switch above covers up to 7 leftover rows");
}

// C (m, n; row stride ldc) += A (m, k; lda) B (k, n; ldb).
template <typename T>
void AddTileProduct(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                    int64_t ldc) {
  TileProduct(m, Tile<T>{a, lda, b, ldb, c, ldc, c, ldc, n, k});
}

// out (k, padded) = alpha A^T with A (m, k) at a[i * row_stride + j * col_stride]; the columns past
// m stay as they are (zero in a fresh buffer): A^T as the B of a tile product whose columns are A's
// rows padded to whole vectors (the queries of a decoding chunk's scores, one_kv_head_chunk.h; a
// few-row GEMM's A, blas.cc).
template <typename T>
void ScaledTransposeInto(const T* a, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, T alpha,
                         int64_t padded, T* out) {
  for (int64_t j = 0; j < k; ++j)
    for (int64_t i = 0; i < m; ++i) out[j * padded + i] = alpha * a[i * row_stride + j * col_stride];
}

}  // namespace lrkv::cpu
