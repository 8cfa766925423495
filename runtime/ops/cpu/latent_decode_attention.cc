// CPU kernel of latent_decode_attention.h (MLA's and MLRA's absorbed decoding): flash-decoding's
// scheme (online_softmax.h), with the one-query MQA kernel's tile products (one_kv_head_chunk.h),
// since each block is one KV head read by every query head. A task takes a range of the cached
// positions and walks it kChunk rows at a time: first the RoPE part of the scores, R^T (rows,
// heads) = rope (scale Q_R)^T, once for every block; then per block S^T = R^T + latents (scale
// Q_b)^T, each score scaled by its key's cached 1 / rms under QK-norm; the online softmax down S^T's
// columns; O_b (heads, c) += P latents. The next chunk is asked for in pieces between the score
// rows. Every cached byte is read once per step; the ranges' partial results are merged per (block,
// head) at the end. Library GEMMs for these small tiles spent most of their time in per-call
// overhead: 12 heads over 16k positions of MLRA-4's 64-wide blocks took 0.70 to 0.83 ms a call that
// way against 0.46 to 0.55 ms with the tile products (MLA's 256-wide latent: the same within noise).
#include <algorithm>
#include <memory>
#include <vector>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cpu/one_kv_head_chunk.h"
#include "runtime/ops/cpu/online_softmax.h"
#include "runtime/ops/latent_decode_attention.h"

namespace lrkv::cpu {
namespace {

constexpr int64_t kChunk = 64;      // positions per chunk: its rows stay in L1/L2 between the two products

template <typename T>
absl::Status Kernel(const Tensor& q, const std::vector<Tensor>& latents, const Tensor& rope, const Tensor* key_scales,
                    const std::vector<int64_t>& firsts, double scale, Tensor& o, Tensor& lse) {
  const int64_t h = q.dim(2), width = q.dim(3), nb = static_cast<int64_t>(latents.size()), c = latents[0].dim(1);
  const int64_t dr = width - nb * c, n = rope.dim(0), rows_state = nb * h;  // online-softmax rows: (block, head)
  const T *qs = q.data<T>(), *rs = rope.data<T>();
  std::vector<const T*> lat(nb);
  for (int64_t b = 0; b < nb; ++b) lat[b] = latents[b].data<T>();
  // g_h,b(t) at gs[t * ldg + firsts[b] + h], with QK-norm
  const T* gs = key_scales != nullptr ? key_scales->data<T>() : nullptr;
  const int64_t ldg = key_scales != nullptr ? key_scales->dim(1) : 0;
  const T sc = static_cast<T>(scale);
  // scale Q^T (B c + d_R, heads padded to whole vectors): block b's rows at b c, the RoPE query's last
  const int64_t padded = RoundUpToVectors<T>(h);
  std::vector<T> q_t(width * padded, T(0)), zero(padded, T(0));
  ScaledTransposeInto(qs, h, width, width, 1, sc, padded, q_t.data());
  const int64_t splits = DecodeSplits(1, n), range = (n + splits - 1) / splits;
  // Per (range, block, head): the range's maximum, sum and output (c wide).
  std::vector<T> part_m(splits * rows_state), part_l(part_m.size()), part_o(part_m.size() * c);
#pragma omp parallel
  {
    // S^T (rows, heads), then P^T; with several blocks R^T beside it, which every block starts from
    std::unique_ptr<T[]> tile(new T[kChunk * padded * (nb > 1 ? 2 : 1)]);
#pragma omp for schedule(dynamic, 1)
    for (int64_t sp = 0; sp < splits; ++sp) {
      T *m = part_m.data() + sp * rows_state, *l = part_l.data() + sp * rows_state;
      T* out = part_o.data() + sp * rows_state * c;
      T *st = tile.get(), *rt = nb > 1 ? st + kChunk * padded : st;
      StartRows(m, l, out, rows_state, c);
      const int64_t end = std::min(n, (sp + 1) * range);
      for (int64_t c0 = sp * range; c0 < end; c0 += kChunk) {
        const int64_t rows = std::min(kChunk, end - c0), next = std::min(kChunk, end - c0 - rows);
        const T* rope_chunk = rs + c0 * dr;  // (rows, d_R)
        const KeyColumns<T> rot{rope_chunk, dr, dr, q_t.data() + nb * c * padded};
        if (dr > 0) {
          ScoresTransposed({rot}, rows, padded, zero.data(), 0, rt,
                           {{rope_chunk + rows * dr, dr}, {gs != nullptr ? gs + (c0 + rows) * ldg : nullptr, ldg}},
                           next);
        }
        const T* start = dr > 0 ? rt : zero.data();  // every block's scores start from R^T
        const int64_t ld_start = dr > 0 ? padded : 0;
        for (int64_t b = 0; b < nb; ++b) {
          const T* chunk = lat[b] + c0 * c;  // (rows, c)
          const KeyColumns<T> nope{chunk, c, c, q_t.data() + b * c * padded};
          ScoresTransposed({nope}, rows, padded, start, ld_start, st, {{chunk + rows * c, c}}, next);
          if (gs != nullptr) {
            for (int64_t j = 0; j < rows; ++j) {
              const T* g = gs + (c0 + j) * ldg + firsts[b];
              T* sj = st + j * padded;
#pragma omp simd
              for (int64_t i = 0; i < h; ++i) sj[i] *= g[i];
            }
          }
          AttendTransposed(st, rows, padded, h, chunk, c, c, m + b * h, l + b * h, out + b * h * c);
        }
      }
    }
  }
  T *os = o.data<T>(), *ls = lse.data<T>();
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t hi = 0; hi < h; ++hi) {
      const int64_t row = b * h + hi;
      ls[hi * nb + b] = MergeRanges(part_m.data() + row, part_l.data() + row, part_o.data() + row * c, splits,
                                    rows_state, c, os + (hi * nb + b) * c);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LatentDecodeAttention(const Tensor& q, const std::vector<Tensor>& latents, const Tensor& rope,
                                   const Tensor* key_scales, const std::vector<int64_t>& firsts, double scale, Tensor& o,
                                   Tensor& lse) {
  LRKV_CPU_FLOAT_DISPATCH(q.dtype(), Kernel, q, latents, rope, key_scales, firsts, scale, o, lse);
}

}  // namespace lrkv::cpu
