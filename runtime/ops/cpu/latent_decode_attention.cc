// CPU kernel of latent_decode_attention.h (MLA's and MLRA's absorbed decoding): flash-decoding's
// scheme (online_softmax.h). A task takes a range of the cached positions and walks it kChunk rows
// at a time: every head reads the same rows c_t and rope_t, so the chunk's scores and its share of
// the outputs are small GEMMs over all heads at once; with QK-norm each score is then scaled by its
// key's cached 1 / rms. Every cached byte is read once per step; the ranges' partial results are
// merged per head at the end.
#include <algorithm>
#include <memory>
#include <vector>

#include "runtime/ops/cpu/blas.h"
#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cpu/online_softmax.h"
#include "runtime/ops/latent_decode_attention.h"

namespace lrkv::cpu {
namespace {

constexpr int64_t kChunk = 64;      // positions per chunk: its rows stay in L2 between the two GEMMs
constexpr int64_t kMinRange = 512;  // positions per task at least

template <typename T>
absl::Status Kernel(const Tensor& q, const Tensor& latent, const Tensor& rope, const Tensor* key_scales,
                    int64_t first, double scale, Tensor& o, Tensor& lse) {
  const int64_t h = q.dim(2), width = q.dim(3), c = o.dim(3), dr = width - c, n = latent.dim(0);
  const T *qs = q.data<T>(), *lat = latent.data<T>(), *rs = rope.data<T>();
  // g_h(t) at gs[t * ldg + h], with QK-norm
  const T* gs = key_scales != nullptr ? key_scales->data<T>() + first : nullptr;
  const int64_t ldg = key_scales != nullptr ? key_scales->dim(1) : 0;
  const T sc = static_cast<T>(scale);
  const int64_t splits = DecodeSplits(1, n, kMinRange), range = (n + splits - 1) / splits;
  // Per (range, head): the range's maximum, sum and output (c wide).
  std::vector<T> part_m(splits * h), part_l(part_m.size()), part_o(part_m.size() * c);
#pragma omp parallel
  {
    std::unique_ptr<T[]> probs(new T[h * kChunk]);  // (H, chunk) probabilities
#pragma omp for schedule(dynamic, 1)
    for (int64_t sp = 0; sp < splits; ++sp) {
      T *m = part_m.data() + sp * h, *l = part_l.data() + sp * h, *out = part_o.data() + sp * h * c;
      T* p = probs.get();
      StartRows(m, l, out, h, c);
      const int64_t end = std::min(n, (sp + 1) * range);
      for (int64_t c0 = sp * range; c0 < end; c0 += kChunk) {
        const int64_t rows = std::min(kChunk, end - c0);
        const T *chunk = lat + c0 * c, *rope_chunk = rs + c0 * dr;  // (rows, c), (rows, d_R)
        // P (H, rows) = scale [Q_c Q_R] [chunk rope_chunk]^T: every head reads the same rows; GEMMs reuse them.
        Gemm(false, true, h, rows, c, sc, qs, width, chunk, c, T(0), p, kChunk);
        if (dr > 0) Gemm(false, true, h, rows, dr, sc, qs + c, width, rope_chunk, dr, T(1), p, kChunk);
        if (gs != nullptr) {
          for (int64_t j = 0; j < rows; ++j) {
            const T* g = gs + (c0 + j) * ldg;
            for (int64_t hi = 0; hi < h; ++hi) p[hi * kChunk + j] *= g[hi];
          }
        }
        for (int64_t hi = 0; hi < h; ++hi) AddChunk(p + hi * kChunk, rows, m[hi], l[hi], out + hi * c, c);
        Gemm(false, false, h, c, rows, T(1), p, kChunk, chunk, c, T(1), out, c);  // out += P latents
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
