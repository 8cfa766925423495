// CPU kernel of factored_decode_attention.h (LRKV decoding): flash-decoding's scheme
// (online_softmax.h) with the keys rebuilt a tile at a time. A task takes a range of the cached
// positions and walks it kChunk positions at a time. For each head it
//  1. rebuilds the chunk's keys: the k_shared rows plus the head's latents times B_h^T, register-
//     blocked as in register_tile_gemm.h;
//  2. scores each key: its sum of squares (QK-norm's 1 / rms) and its dot with the query rotated
//     back by the row's angle, since q . RoPE_t(k) = RoPE_-t(q) . k, so the normed and rotated key
//     is never written. Where the RoPE halves are whole vectors (the configs' head sizes) 1 and 2 are
//     one pass, each key entry scored from the register it was rebuilt in (RebuildAndScore);
//     otherwise the keys go to a (kChunk, D) tile in L1 and a second pass scores its rows;
//  3. folds the chunk's scores into the head's online softmax.
// Then the chunk's values are added for every head at once: v_shared through one (H, chunk) x
// (chunk, D) tile product, each head's latent through its (1, chunk) x (chunk, r) product. Every
// cached byte is read once per step; the ranges' partial results are merged per head at the end.
#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cpu/online_softmax.h"
#include "runtime/ops/cpu/register_tile_gemm.h"
#include "runtime/ops/cpu/rope_angles.h"
#include "runtime/ops/cpu/simd_vec.h"
#include "runtime/ops/factored_decode_attention.h"

namespace lrkv::cpu {
namespace {

constexpr int64_t kChunk = 64;      // positions per chunk: one head's key tile is kChunk x D

// scale * N(k) . RoPE_t(q)^-1 for one rebuilt key row k (D) at angles cos c, sin s (half each): the
// first `first` entries pass through RoPE, the rest pair i with i + half. A vector of lanes at a
// time (simd_vec.h), then the entries left over one by one: 3.4x faster than the `omp simd` loop.
template <typename T>
T Score(const T* q, const T* k, const T* c, const T* s, int64_t d, int64_t first, int64_t half, bool norm, T eps,
        T scale) {
  constexpr int64_t kLanes = kSimdLanes<T>;
  SimdVec<T> ss_v{}, dot_v{};
  int64_t j = 0;
  for (; j + kLanes <= first; j += kLanes) {
    const SimdVec<T> kj = LoadVec(k + j);
    ss_v += kj * kj, dot_v += kj * LoadVec(q + j);
  }
  T ss = 0, dot = 0;
  for (; j < first; ++j) ss += k[j] * k[j], dot += q[j] * k[j];
  const T *q1 = q + first, *q2 = q1 + half, *k1 = k + first, *k2 = k1 + half;
  int64_t i = 0;
  for (; i + kLanes <= half; i += kLanes) {
    const SimdVec<T> a = LoadVec(k1 + i), b = LoadVec(k2 + i), qa = LoadVec(q1 + i), qb = LoadVec(q2 + i);
    const SimdVec<T> ci = LoadVec(c + i), si = LoadVec(s + i);
    ss_v += a * a + b * b, dot_v += a * (qa * ci + qb * si) + b * (qb * ci - qa * si);
  }
  for (; i < half; ++i) {
    ss += k1[i] * k1[i] + k2[i] * k2[i];
    dot += k1[i] * (q1[i] * c[i] + q2[i] * s[i]) + k2[i] * (q2[i] * c[i] - q1[i] * s[i]);
  }
  ss += SumVec<T>(ss_v), dot += SumVec<T>(dot_v);
  const T rstd = norm ? T(1) / std::sqrt(ss / T(d) + eps) : T(1);
  return scale * rstd * dot;
}

// Steps 1 and 2 fused for R rows (kTileRows, or a chunk's last few): each rebuilt key entry is
// scored while it is still in a register, so the key tile is never written and read back. The
// columns go two vectors at a time, as RoPE pairs them: (e, e + half) in the rotated part,
// (e, e + lanes) before it; a pair's R x 2 accumulators start from the k_shared rows and gain the
// latents times B_h^T as register_tile_gemm.h's blocks do, then add their dot with the query rotated
// back and their squares into each row's vectors. Needs `first` in whole vector pairs and `half` in
// whole vectors (FusedShape). On a Zen 3 (AVX2), 12 heads over 16k positions on both cores: 22.4 ms
// against 23.9 to 25.1 with the separate scoring pass (four alternating runs).
// Its inner loop repeats register_tile::Block's instead of sharing it: through one shared
// accumulation function, taking any two column vectors, this kernel ran 4 to 5% slower (23.4 to
// 23.8 against 22.5 to 22.6 ms, three alternating runs), the tile products unchanged.
template <typename T>
bool FusedShape(int64_t first, int64_t half) {
  return first % (2 * kSimdLanes<T>) == 0 && half % kSimdLanes<T> == 0;
}

template <typename T, int R>
void RebuildAndScore(const T* lat, int64_t lda, const T* bt, const T* ks, int64_t d, int64_t r, const T* q,
                     const T* c, const T* s, int64_t first, int64_t half, bool norm, T eps, T scale, T* p) {
  constexpr int64_t kLanes = kSimdLanes<T>;
  SimdVec<T> dot[R], ss[R];
  for (int i = 0; i < R; ++i) dot[i] = SimdVec<T>{}, ss[i] = SimdVec<T>{};
  for (int64_t at = 0; at < first / 2 + half; at += kLanes) {
    const bool rotated = at >= first / 2;
    const int64_t e1 = rotated ? first + (at - first / 2) : 2 * at, e2 = rotated ? e1 + half : e1 + kLanes;
    SimdVec<T> a1[R], a2[R];
    for (int i = 0; i < R; ++i) a1[i] = LoadVec(ks + i * d + e1), a2[i] = LoadVec(ks + i * d + e2);
    for (int64_t j = 0; j < r; ++j) {
      const SimdVec<T> b1 = LoadVec(bt + j * d + e1), b2 = LoadVec(bt + j * d + e2);
      for (int i = 0; i < R; ++i) {
        const T x = lat[i * lda + j];
        a1[i] += x * b1, a2[i] += x * b2;
      }
    }
    const SimdVec<T> q1 = LoadVec(q + e1), q2 = LoadVec(q + e2);
    for (int i = 0; i < R; ++i) {
      ss[i] += a1[i] * a1[i] + a2[i] * a2[i];
      if (!rotated) {
        dot[i] += a1[i] * q1 + a2[i] * q2;
        continue;
      }
      const SimdVec<T> ci = LoadVec(c + i * half + (e1 - first)), si = LoadVec(s + i * half + (e1 - first));
      dot[i] += a1[i] * (q1 * ci + q2 * si) + a2[i] * (q2 * ci - q1 * si);
    }
  }
  for (int i = 0; i < R; ++i) {
    const T rstd = norm ? T(1) / std::sqrt(SumVec<T>(ss[i]) / T(d) + eps) : T(1);
    p[i] = scale * rstd * SumVec<T>(dot[i]);
  }
}

template <typename T>
absl::Status Kernel(const Tensor& q, const Tensor& k_shared, const Tensor& k_latent, const Tensor& bk,
                    const Tensor& v_shared, const Tensor& v_latent, const KeyTransform& keys, double scale,
                    Tensor& o, Tensor& lse) {
  const int64_t h = q.dim(2), d = q.dim(3), r = bk.dim(2), w = d + r, n = k_shared.dim(0), hr = h * r;
  const int64_t half = keys.rope_dims / 2, first = d - keys.rope_dims;
  const T *qs = q.data<T>(), *kss = k_shared.data<T>(), *kls = k_latent.data<T>(), *bks = bk.data<T>();
  const T *vss = v_shared.data<T>(), *vls = v_latent.data<T>();
  const std::shared_ptr<const RopeTable<T>> angles = RopeAngles<T>(keys.theta, keys.rope_dims, n);
  const T sc = static_cast<T>(scale), eps = static_cast<T>(keys.eps);
  std::vector<T> bt(h * r * d);  // (H, r, D): B_h^T, whose rows the tile product reads whole
  for (int64_t hi = 0; hi < h; ++hi)
    for (int64_t e = 0; e < d; ++e)
      for (int64_t j = 0; j < r; ++j) bt[(hi * r + j) * d + e] = bks[(hi * d + e) * r + j];
  const bool fused_shape = FusedShape<T>(first, half);
  const int64_t splits = DecodeSplits(1, n), range = (n + splits - 1) / splits;
  // Per (range, head): the range's maximum, sum and output (w wide).
  std::vector<T> part_m(splits * h), part_l(part_m.size()), part_o(part_m.size() * w);
#pragma omp parallel
  {
    // (chunk, D): the keys, where they are not scored in registers; (H, chunk)
    std::unique_ptr<T[]> tile(new T[fused_shape ? 0 : kChunk * d]), probs(new T[h * kChunk]);
#pragma omp for schedule(dynamic, 1)
    for (int64_t sp = 0; sp < splits; ++sp) {
      T *m = part_m.data() + sp * h, *l = part_l.data() + sp * h, *out = part_o.data() + sp * h * w;
      StartRows(m, l, out, h, w);
      const int64_t end = std::min(n, (sp + 1) * range);
      for (int64_t c0 = sp * range; c0 < end; c0 += kChunk) {
        const int64_t rows = std::min(kChunk, end - c0);
        const T* latents = kls + c0 * hr;  // (rows, H r)
        for (int64_t hi = 0; hi < h; ++hi) {
          T* p = probs.get() + hi * kChunk;
          if (fused_shape) {  // steps 1 and 2 in registers, kTileRows rows at a time, then the last ones
            const auto score = [&](auto block, int64_t i) {
              const int64_t at = (c0 + i) * half;
              RebuildAndScore<T, decltype(block)::value>(latents + i * hr + hi * r, hr, bt.data() + hi * r * d,
                                                         kss + (c0 + i) * d, d, r, qs + hi * d, angles->cos.data() + at,
                                                         angles->sin.data() + at, first, half, keys.qk_norm, eps, sc,
                                                         p + i);
            };
            int64_t i = 0;
            for (; i + kTileRows <= rows; i += kTileRows) score(std::integral_constant<int, kTileRows>{}, i);
            switch (rows - i) {
              case 7: score(std::integral_constant<int, 7>{}, i); break;
              case 6: score(std::integral_constant<int, 6>{}, i); break;
              case 5: score(std::integral_constant<int, 5>{}, i); break;
              case 4: score(std::integral_constant<int, 4>{}, i); break;
              case 3: score(std::integral_constant<int, 3>{}, i); break;
              case 2: score(std::integral_constant<int, 2>{}, i); break;
              case 1: score(std::integral_constant<int, 1>{}, i); break;
              default: break;
            }
          } else {  // other shapes: the key tile written, then scored
            T* kt = tile.get();  // = k_shared rows + the head's latents B_h^T
            TileProduct(rows, Tile<T>{latents + hi * r, hr, bt.data() + hi * r * d, d, kss + c0 * d, d, kt, d, d, r});
            for (int64_t i = 0; i < rows; ++i) {
              const int64_t at = (c0 + i) * half;
              p[i] = Score(qs + hi * d, kt + i * d, angles->cos.data() + at, angles->sin.data() + at, d, first, half,
                           keys.qk_norm, eps, sc);
            }
          }
          AddChunk(p, rows, m[hi], l[hi], out + hi * w, w);
        }
        // out[:, :D] += P V_shared;  out[h, D:] += p_h v_latent[:, h]
        AddTileProduct(h, d, rows, probs.get(), kChunk, vss + c0 * d, d, out, w);
        for (int64_t i = 0; i < rows; ++i) {
          const T* row = vls + (c0 + i) * hr;
          for (int64_t hi = 0; hi < h; ++hi) {
            const T p = probs[hi * kChunk + i];
            T* lat = out + hi * w + d;
#pragma omp simd
            for (int64_t j = 0; j < r; ++j) lat[j] += p * row[hi * r + j];
          }
        }
      }
    }
  }
  T *os = o.data<T>(), *ls = lse.data<T>();
  for (int64_t hi = 0; hi < h; ++hi) {
    ls[hi] = MergeRanges(part_m.data() + hi, part_l.data() + hi, part_o.data() + hi * w, splits, h, w, os + hi * w);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FactoredDecodeAttention(const Tensor& q, const Tensor& k_shared, const Tensor& k_latent,
                                     const Tensor& bk, const Tensor& v_shared, const Tensor& v_latent,
                                     const KeyTransform& keys, double scale, Tensor& o, Tensor& lse) {
  LRKV_CPU_FLOAT_DISPATCH(q.dtype(), Kernel, q, k_shared, k_latent, bk, v_shared, v_latent, keys, scale, o, lse);
}

}  // namespace lrkv::cpu
