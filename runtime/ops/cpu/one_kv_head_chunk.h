// One chunk of a one-query decoding attention in which many query heads read one KV head (MQA's
// path in attention.cc; MLA's and MLRA's latent kernel, latent_decode_attention.cc), as two
// register-blocked tile products (register_tile_gemm.h) that reuse each cached row from registers
// for every head:
//   1. S^T (keys, heads) = K_chunk (scale Q)^T, the heads padded to whole vectors, the key's
//      columns possibly in several parts (the latent and the RoPE key);
//   2. the online softmax down S^T's columns, a vector of heads at a time (online_softmax.h);
//   3. O (heads, Dv) += P V_chunk, P read from S^T's columns: no transpose.
// Step 1 asks for the next chunk in pieces, one before each kTileRows score rows: asked for at
// once, its cache lines queued up behind one another and the computation behind them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "runtime/ops/cpu/online_softmax.h"
#include "runtime/ops/cpu/register_tile_gemm.h"

namespace lrkv::cpu {

// Some of the key's columns: the chunk's rows (keys, width) at row stride ld, and scale Q^T's rows
// for those columns, (width, padded).
template <typename T>
struct KeyColumns {
  const T* rows;
  int64_t ld, width;
  const T* q_t;
};

// Rows of the next chunk to ask for from p, per_row values each (how many: ScoresTransposed's
// ahead_rows).
template <typename T>
struct NextRows {
  const T* p;
  int64_t per_row;
};

// Step 1: st (keys, padded) = start + the sum over `parts` of rows x q_t, kTileRows rows at a time,
// each piece of rows preceded by the same piece of the next chunk's rows in `ahead` (the first
// `ahead_rows` of them). start: (keys, padded) at row stride ld_start, which may be st itself; with
// ld_start 0 one row for every key (`padded` zeros for a plain product).
template <typename T>
void ScoresTransposed(std::initializer_list<KeyColumns<T>> parts, int64_t keys, int64_t padded, const T* start,
                      int64_t ld_start, T* st, std::initializer_list<NextRows<T>> ahead, int64_t ahead_rows) {
  for (int64_t j = 0; j < keys; j += kTileRows) {
    const int64_t n = std::min<int64_t>(kTileRows, keys - j), asked = std::clamp<int64_t>(ahead_rows - j, 0, n);
    for (const NextRows<T>& a : ahead) Prefetch(a.p + j * a.per_row, asked * a.per_row);
    T* sj = st + j * padded;
    const T* c0 = start + j * ld_start;  // the first part starts from `start`, the others add
    int64_t ldc0 = ld_start;
    for (const KeyColumns<T>& p : parts) {
      if (p.width == 0) continue;
      TileProduct(n, Tile<T>{p.rows + j * p.ld, p.ld, p.q_t, padded, c0, ldc0, sj, padded, padded, p.width});
      c0 = sj, ldc0 = padded;
    }
  }
}

// Steps 2 and 3 for the first `heads` columns of st (keys, padded): the rows' states m, l, o
// (heads, dv) move on by the chunk, with V_chunk (keys, dv) at row stride ldv.
template <typename T>
void AttendTransposed(T* st, int64_t keys, int64_t padded, int64_t heads, const T* v, int64_t ldv, int64_t dv, T* m,
                      T* l, T* o) {
  AddChunkByColumns(st, keys, padded, heads, m, l, o, dv);
  TileProduct(heads, Tile<T>{st, 1, v, ldv, o, dv, o, dv, dv, keys, padded});
}

}  // namespace lrkv::cpu
