// CPU kernel of latent_decode_attention.h (MLA's and MLRA's absorbed decoding): flash-decoding's
// scheme (online_softmax.h), and the one-query MQA kernel's tile products (attention.cc), since
// this is one KV head read by every query head. A task takes a range of the cached positions and
// walks it kChunk rows at a time. Per chunk, two register-blocked products (register_tile_gemm.h)
// reuse each cached row from registers for all heads: the scores' transpose S^T (rows, heads) =
// [latents rope] (scale Q)^T, the heads padded to whole vectors, each then scaled by its key's
// cached 1 / rms under QK-norm; the online softmax down S^T's columns; then O (heads, c) += P
// latents, P read from S^T's columns. The next chunk is asked for in pieces between the score
// rows. Every cached byte is read once per step; the ranges' partial results are merged per head at
// the end. Library GEMMs for these small tiles spent most of their time in per-call overhead: 12
// heads over 16k positions of MLRA-4's 64-wide blocks took 0.70 to 0.83 ms a call that way against
// 0.46 to 0.55 ms now (MLA's 256-wide latent: the same within noise).
#include <algorithm>
#include <memory>
#include <vector>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cpu/online_softmax.h"
#include "runtime/ops/cpu/register_tile_gemm.h"
#include "runtime/ops/latent_decode_attention.h"

namespace lrkv::cpu {
namespace {

constexpr int64_t kChunk = 64;      // positions per chunk: its rows stay in L1/L2 between the two products

template <typename T>
absl::Status Kernel(const Tensor& q, const Tensor& latent, const Tensor& rope, const Tensor* key_scales,
                    int64_t first, double scale, Tensor& o, Tensor& lse) {
  const int64_t h = q.dim(2), width = q.dim(3), c = o.dim(3), dr = width - c, n = latent.dim(0);
  const T *qs = q.data<T>(), *lat = latent.data<T>(), *rs = rope.data<T>();
  // g_h(t) at gs[t * ldg + h], with QK-norm
  const T* gs = key_scales != nullptr ? key_scales->data<T>() + first : nullptr;
  const int64_t ldg = key_scales != nullptr ? key_scales->dim(1) : 0;
  const T sc = static_cast<T>(scale);
  // scale Q^T (c + d_R, heads padded to whole vectors)
  const int64_t padded = RoundUpToVectors<T>(h);
  std::vector<T> q_t(width * padded, T(0)), zero(padded, T(0));
  for (int64_t i = 0; i < h; ++i)
    for (int64_t e = 0; e < width; ++e) q_t[e * padded + i] = sc * qs[i * width + e];
  const int64_t splits = DecodeSplits(1, n), range = (n + splits - 1) / splits;
  // Per (range, head): the range's maximum, sum and output (c wide).
  std::vector<T> part_m(splits * h), part_l(part_m.size()), part_o(part_m.size() * c);
#pragma omp parallel
  {
    std::unique_ptr<T[]> tile(new T[kChunk * padded]);  // S^T (rows, heads), then P^T
#pragma omp for schedule(dynamic, 1)
    for (int64_t sp = 0; sp < splits; ++sp) {
      T *m = part_m.data() + sp * h, *l = part_l.data() + sp * h, *out = part_o.data() + sp * h * c;
      T* st = tile.get();
      StartRows(m, l, out, h, c);
      const int64_t end = std::min(n, (sp + 1) * range);
      for (int64_t c0 = sp * range; c0 < end; c0 += kChunk) {
        const int64_t rows = std::min(kChunk, end - c0), next = std::min(kChunk, end - c0 - rows);
        const T *chunk = lat + c0 * c, *rope_chunk = rs + c0 * dr;  // (rows, c), (rows, d_R)
        for (int64_t j = 0; j < rows; j += kTileRows) {
          const int64_t block = std::min<int64_t>(kTileRows, rows - j), asked = std::clamp<int64_t>(next - j, 0, kTileRows);
          if (asked > 0) {  // the next chunk's rows j.. (rows = kChunk whenever there is a next chunk)
            Prefetch(chunk + (rows + j) * c, asked * c), Prefetch(rope_chunk + (rows + j) * dr, asked * dr);
            if (gs != nullptr) Prefetch(gs + (c0 + rows + j) * ldg, asked * ldg);
          }
          T* sj = st + j * padded;
          TileProduct(block, Tile<T>{chunk + j * c, c, q_t.data(), padded, zero.data(), 0, sj, padded, padded, c});
          if (dr > 0) {
            TileProduct(block, Tile<T>{rope_chunk + j * dr, dr, q_t.data() + c * padded, padded, sj, padded, sj,
                                       padded, padded, dr});
          }
        }
        for (int64_t j = 0; gs != nullptr && j < rows; ++j) {
          const T* g = gs + (c0 + j) * ldg;
          T* sj = st + j * padded;
#pragma omp simd
          for (int64_t i = 0; i < h; ++i) sj[i] *= g[i];
        }
        AddChunkByColumns(st, rows, padded, h, m, l, out, c);
        // O (H, c) += P latents, P read from S^T's columns
        TileProduct(h, Tile<T>{st, 1, chunk, c, out, c, out, c, c, rows, padded});
      }
    }
  }
  T *os = o.data<T>(), *ls = lse.data<T>();
  for (int64_t hi = 0; hi < h; ++hi) {
    ls[hi] = MergeRanges(part_m.data() + hi, part_l.data() + hi, part_o.data() + hi * c, splits, h, c, os + hi * c);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LatentDecodeAttention(const Tensor& q, const Tensor& latent, const Tensor& rope, const Tensor* key_scales,
                                   int64_t first, double scale, Tensor& o, Tensor& lse) {
  LRKV_CPU_FLOAT_DISPATCH(q.dtype(), Kernel, q, latent, rope, key_scales, first, scale, o, lse);
}

}  // namespace lrkv::cpu
