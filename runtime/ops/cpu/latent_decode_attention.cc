// CPU kernel of latent_decode_attention.h (MLA's and MLRA's absorbed decoding): flash-decoding's
// scheme (online_softmax.h), with the one-query MQA kernel's tile products (one_kv_head_chunk.h),
// since this is one KV head read by every query head. A task takes a range of the cached positions
// and walks it kChunk rows at a time: S^T (rows, heads) = [latents rope] (scale Q)^T, each score
// then scaled by its key's cached 1 / rms under QK-norm; the online softmax down S^T's columns;
// O (heads, c) += P latents. The next chunk is asked for in pieces between the score rows. Every
// cached byte is read once per step; the ranges' partial results are merged per head at
// the end. Library GEMMs for these small tiles spent most of their time in per-call overhead: 12
// heads over 16k positions of MLRA-4's 64-wide blocks took 0.70 to 0.83 ms a call that way against
// 0.46 to 0.55 ms now (MLA's 256-wide latent: the same within noise).
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
  ScaledTransposeInto(qs, h, width, width, 1, sc, padded, q_t.data());
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
        const KeyColumns<T> nope{chunk, c, c, q_t.data()}, rot{rope_chunk, dr, dr, q_t.data() + c * padded};
        const NextRows<T> scales_ahead{gs != nullptr ? gs + (c0 + rows) * ldg : nullptr, gs != nullptr ? ldg : 0};
        ScoresTransposed({nope, rot}, rows, padded, zero.data(), st,
                         {{chunk + rows * c, c}, {rope_chunk + rows * dr, dr}, scales_ahead}, next);
        if (gs != nullptr) {
          for (int64_t j = 0; j < rows; ++j) {
            const T* g = gs + (c0 + j) * ldg;
            T* sj = st + j * padded;
#pragma omp simd
            for (int64_t i = 0; i < h; ++i) sj[i] *= g[i];
          }
        }
        AttendTransposed(st, rows, padded, h, chunk, c, c, m, l, out);
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
