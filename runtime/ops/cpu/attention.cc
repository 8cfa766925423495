// CPU causal attention that keeps no (T, T) matrix: FlashAttention-2's scheme on BLAS tiles. Forward
// takes kQueryBlock query rows of one head at a time: their scores against the keys they may see
// (one GEMM), each row's softmax in a per-thread buffer, the row's log-sum-exp saved, the outputs
// (one GEMM). Backward recomputes a block's probabilities from q, k and the log-sum-exp, then
// dP = dO V^T, dS = P (dP - rowsum(P dP)), dQ = dS K, dK += dS^T Q, dV += P^T dO (GEMMs), per
// (sequence, KV head) so that the query heads sharing a KV head add into its dK, dV in turn.
#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "runtime/ops/attention.h"
#include "runtime/ops/cpu/blas.h"
#include "runtime/ops/cpu/decode_rows.h"
#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cpu/one_kv_head_chunk.h"
#include "runtime/ops/cpu/online_softmax.h"

namespace lrkv::cpu {
namespace {

constexpr int64_t kQueryBlock = 64;  // query rows per tile: a tile's scores are kQueryBlock x T

// Row r of the (rows, keys) scores `p`, whose query sees keys [0, seen): softmax in place (zero past
// `seen`), returning the row's log-sum-exp.
template <typename T>
T SoftmaxRow(T* p, int64_t seen, int64_t keys) {
  const T m = *std::max_element(p, p + seen);
  T sum = 0;
  for (int64_t j = 0; j < seen; ++j) sum += (p[j] = std::exp(p[j] - m));
  const T inv = T(1) / sum;
  for (int64_t j = 0; j < seen; ++j) p[j] *= inv;
  std::fill(p + seen, p + keys, T(0));
  return m + std::log(sum);
}

// Decoding (one query per sequence), flash-decoding's scheme: the cached positions are split into
// ranges, one task each, so that even one sequence keeps every thread busy. A task walks its range
// kDecodeChunk positions at a time, reading each position's keys (Hk, D), then its values, in
// memory order for all heads at once: the cache streams through once, never strided by head, and a
// query head that shares its KV head with others finds that key row still in L1. Each head keeps
// an online softmax over the chunks; the ranges' partial results are then merged per head. When
// many query heads share a KV head (MQA's 12 here), a chunk is instead two register-blocked tile
// products per KV head over its query heads (one_kv_head_chunk.h), which reuse each key and value
// row from registers: scores^T (keys, heads) = K_chunk (scale Q_g)^T; the online softmax down that
// tile's columns; then O (heads, Dv) += P V_chunk reading P from the same tile's columns, the next
// chunk asked for in pieces between the score rows. These three (no transpose of the scores, the
// softmax by columns, prefetching in pieces) and the 12-row blocks of the outputs' product took
// MQA's 32 one-query attentions at 16k (a decoding step at batch 16) from 25.7 to 21.3 ms (best of
// 15, three alternating runs). GQA's groups of 3 keep the row loop (decode_rows.h), which reads at
// the machine's bandwidth there (36 GB/s), against 23 as tile products.
constexpr int64_t kDecodeChunk = 64;       // positions per chunk of a task's online softmax
constexpr int64_t kDecodeTileGroup = 4;    // query heads per KV head from which chunks are tile products
// A chunk's keys and values up to this size are prefetched while the chunk before computes (MQA's
// 64 KiB: 59.6 against 68.9 ms a step at batch 16 and 16k, medians of 7 alternating runs). GQA's
// 256 KiB and MHA's 768 KiB are not: prefetching GQA's made that case 123 ms instead of 90.
constexpr int64_t kDecodePrefetchBytes = 64 << 10;

// The local query heads [first, last) that read KV head g.
std::pair<int64_t, int64_t> QueryHeadsOf(int64_t g, KvGroups groups, int64_t h) {
  return {std::max<int64_t>(0, g * groups.group - groups.q_head_offset),
          std::min(h, (g + 1) * groups.group - groups.q_head_offset)};
}

template <typename T>
void ForwardOneQuery(const T* qs, const T* ks, const T* vs, T sc, T* os, T* ls, int64_t b, int64_t h, int64_t hk,
                     int64_t tk, int64_t dqk, int64_t dv, KvGroups groups) {
  const int64_t group = groups.group, offset = groups.q_head_offset;
  const int64_t splits = DecodeSplits(b, tk), range = (tk + splits - 1) / splits;
  std::vector<int64_t> kv_head(h);  // query head -> the KV head it reads
  for (int64_t i = 0; i < h; ++i) kv_head[i] = (i + offset) / group;
  // Per (sequence, range, query head): the range's maximum, sum and output.
  std::vector<T> part_m(b * splits * h), part_l(part_m.size()), part_o(part_m.size() * dv);
  // Enough query heads per KV head on this rank: a chunk's scores and outputs as tile products per
  // KV head, from scale Q_g^T, (B, Hk, Dqk, heads of g padded to whole vectors).
  const int64_t heads_per_kv = std::min(h, group);  // at most, on this rank
  const bool tile_products = heads_per_kv >= kDecodeTileGroup;
  const bool prefetch = kDecodeChunk * hk * (dqk + dv) * int64_t(sizeof(T)) <= kDecodePrefetchBytes;
  const int64_t padded = RoundUpToVectors<T>(heads_per_kv);
  std::vector<T> q_t(tile_products ? b * hk * dqk * padded : 0, T(0)), zero(padded, T(0));
  for (int64_t bi = 0; tile_products && bi < b; ++bi)
    for (int64_t g = 0; g < hk; ++g) {
      const auto [first, last] = QueryHeadsOf(g, groups, h);
      ScaledTransposeInto(qs + (bi * h + first) * dqk, last - first, dqk, dqk, 1, sc, padded,
                          q_t.data() + (bi * hk + g) * dqk * padded);
    }
#pragma omp parallel
  {
    std::unique_ptr<T[]> tile(new T[tile_products ? 0 : h * kDecodeChunk]);  // (H, chunk) scores
    std::unique_ptr<T[]> tile_t(new T[tile_products ? kDecodeChunk * padded : 0]);  // (chunk, heads of g): scores^T
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t bi = 0; bi < b; ++bi)
      for (int64_t sp = 0; sp < splits; ++sp) {
        const int64_t at = (bi * splits + sp) * h, k_begin = sp * range, k_end = std::min(tk, k_begin + range);
        T *m = part_m.data() + at, *l = part_l.data() + at, *o = part_o.data() + at * dv, *s = tile.get();
        const T* q = qs + bi * h * dqk;  // (H, Dqk)
        StartRows(m, l, o, h, dv);
        for (int64_t c0 = k_begin; c0 < k_end; c0 += kDecodeChunk) {
          const int64_t keys = std::min(kDecodeChunk, k_end - c0);
          const T* kc = ks + (bi * tk + c0) * hk * dqk;  // (keys, Hk, Dqk)
          const T* vc = vs + (bi * tk + c0) * hk * dv;   // (keys, Hk, Dv)
          if (tile_products) {
            // The next chunk's positions [j, j + kTileRows) are asked for before the first local KV
            // head's score rows j.. are computed (keys = kDecodeChunk whenever there is a next chunk).
            int64_t next = prefetch ? std::min(kDecodeChunk, k_end - c0 - keys) : 0;
            for (int64_t g = 0; g < hk; ++g) {
              const auto [first, last] = QueryHeadsOf(g, groups, h);
              if (first == last) continue;
              T* st = tile_t.get();  // S^T (keys, heads of g) = K_g (scale Q_g)^T
              const KeyColumns<T> key{kc + g * dqk, hk * dqk, dqk, q_t.data() + (bi * hk + g) * dqk * padded};
              ScoresTransposed({key}, keys, padded, zero.data(), 0, st,
                               {{kc + keys * hk * dqk, hk * dqk}, {vc + keys * hk * dv, hk * dv}}, next);
              next = 0;
              AttendTransposed(st, keys, padded, last - first, vc + g * dv, hk * dv, dv, m + first, l + first,
                               o + first * dv);
            }
            continue;
          }
          if (prefetch) {  // the next chunk's keys and values, all asked for at once
            const int64_t next = std::min(kDecodeChunk, k_end - c0 - keys);
            Prefetch(kc + keys * hk * dqk, next * hk * dqk), Prefetch(vc + keys * hk * dv, next * hk * dv);
          }
          // scores four key rows at a time (decode_rows.h), online softmax, outputs per KV head
          int64_t j = 0;
          for (; j + 4 <= keys; j += 4) {
            const T* krows = kc + j * hk * dqk;  // (4, Hk, Dqk)
            for (int64_t g = 0; g < hk; ++g) {
              const auto [first, last] = QueryHeadsOf(g, groups, h);
              ScoresOfFourKeyRows(krows + g * dqk, hk * dqk, q, first, last, dqk, sc, s + j, kDecodeChunk);
            }
          }
          for (; j < keys; ++j) {
            const T* krow = kc + j * hk * dqk;  // (Hk, Dqk)
            for (int64_t g = 0; g < hk; ++g) {
              const auto [first, last] = QueryHeadsOf(g, groups, h);
              ScoresOfKeyRow(krow + g * dqk, q, first, last, dqk, sc, s + j, kDecodeChunk);
            }
          }
          for (int64_t i = 0; i < h; ++i) AddChunk(s + i * kDecodeChunk, keys, m[i], l[i], o + i * dv, dv);
          j = 0;
          for (; j + 4 <= keys; j += 4) {
            const T* vrows = vc + j * hk * dv;  // (4, Hk, Dv)
            for (int64_t g = 0; g < hk; ++g) {
              const auto [first, last] = QueryHeadsOf(g, groups, h);
              AddFourValueRowsToHeads(s + j, kDecodeChunk, vrows + g * dv, hk * dv, first, last, dv, o);
            }
          }
          for (; j < keys; ++j) {
            const T* vrow = vc + j * hk * dv;  // (Hk, Dv)
            for (int64_t i = 0; i < h; ++i) {
              const T p = s[i * kDecodeChunk + j], *vi = vrow + kv_head[i] * dv;
              T* oi = o + i * dv;
#pragma omp simd
              for (int64_t e = 0; e < dv; ++e) oi[e] += p * vi[e];
            }
          }
        }
      }
  }
  // Merge the ranges: each head's maximum over them, its sum and output rescaled to it.
#pragma omp parallel for collapse(2)
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t i = 0; i < h; ++i) {
      const int64_t row0 = bi * splits * h + i;  // range sp at row0 + sp * h
      ls[bi * h + i] = MergeRanges(part_m.data() + row0, part_l.data() + row0, part_o.data() + row0 * dv, splits, h,
                                   dv, os + (bi * h + i) * dv);
    }
}

template <typename T>
absl::Status Forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o, Tensor& lse,
                     KvGroups groups) {
  // q (B, T, H, Dqk), k (B, Tk, Hk, Dqk), v (B, Tk, Hk, Dv), o (B, T, H, Dv), lse (B, H, T)
  const int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), hk = k.dim(2), dqk = q.dim(3), dv = v.dim(3);
  const int64_t tk = k.dim(1), past = tk - t;  // decoding: the queries are the last t of tk positions
  const int64_t group = groups.group, offset = groups.q_head_offset, blocks = (t + kQueryBlock - 1) / kQueryBlock;
  const T *qs = q.data<T>(), *ks = k.data<T>(), *vs = v.data<T>();
  T *os = o.data<T>(), *ls = lse.data<T>();  // lse has T's precision (AccumDType)
  const T sc = static_cast<T>(scale);
  if (t == 1) {
    ForwardOneQuery(qs, ks, vs, sc, os, ls, b, h, hk, tk, dqk, dv, groups);
    return absl::OkStatus();
  }
#pragma omp parallel
  {
    std::unique_ptr<T[]> tile(new T[kQueryBlock * tk]);  // (rows, keys): scores, then probabilities
#pragma omp for collapse(3) schedule(dynamic, 1)
    for (int64_t bi = 0; bi < b; ++bi)
      for (int64_t hi = 0; hi < h; ++hi)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t g = (hi + offset) / group, i0 = blk * kQueryBlock, rows = std::min(kQueryBlock, t - i0);
          const int64_t keys = past + i0 + rows;  // the last row sees these
          const T* q0 = qs + ((bi * t + i0) * h + hi) * dqk;
          const T* k0 = ks + (bi * tk * hk + g) * dqk;
          const T* v0 = vs + (bi * tk * hk + g) * dv;
          T* s = tile.get();
          Gemm(false, true, rows, keys, dqk, sc, q0, h * dqk, k0, hk * dqk, T(0), s, keys);
          for (int64_t r = 0; r < rows; ++r) {  // query r sees keys [0, past + i0 + r + 1)
            ls[(bi * h + hi) * t + i0 + r] = SoftmaxRow(s + r * keys, past + i0 + r + 1, keys);
          }
          Gemm(false, false, rows, dv, keys, T(1), s, keys, v0, hk * dv, T(0), os + ((bi * t + i0) * h + hi) * dv, h * dv);
        }
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse,
                      double scale, Tensor& dq, Tensor& dk, Tensor& dv, KvGroups groups) {
  const int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), hk = k.dim(2), dqk = q.dim(3), dvd = v.dim(3);
  const int64_t blocks = (t + kQueryBlock - 1) / kQueryBlock;
  const T *qs = q.data<T>(), *ks = k.data<T>(), *vs = v.data<T>(), *ls = lse.data<T>(), *dos = dout.data<T>();
  T *dqs = dq.data<T>(), *dks = dk.data<T>(), *dvs = dv.data<T>();
  const T sc = static_cast<T>(scale);
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t g = 0; g < hk; ++g) {
      std::vector<T> p_tile(kQueryBlock * t), dp_tile(kQueryBlock * t);  // (rows, keys)
      const T* k0 = ks + (bi * t * hk + g) * dqk;
      const T* v0 = vs + (bi * t * hk + g) * dvd;
      T* dk0 = dks + (bi * t * hk + g) * dqk;
      T* dv0 = dvs + (bi * t * hk + g) * dvd;
      for (int64_t j = 0; j < t; ++j) {
        std::fill_n(dk0 + j * hk * dqk, dqk, T(0));
        std::fill_n(dv0 + j * hk * dvd, dvd, T(0));
      }
      // The local query heads of group g.
      const auto [first, last] = QueryHeadsOf(g, groups, h);
      for (int64_t hi = first; hi < last; ++hi)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t i0 = blk * kQueryBlock, rows = std::min(kQueryBlock, t - i0), keys = i0 + rows;
          const T* q0 = qs + ((bi * t + i0) * h + hi) * dqk;
          const T* do0 = dos + ((bi * t + i0) * h + hi) * dvd;
          T *p = p_tile.data(), *ds = dp_tile.data();
          // The block's probabilities again, from the saved log-sum-exp; dP = dO V^T.
          Gemm(false, true, rows, keys, dqk, sc, q0, h * dqk, k0, hk * dqk, T(0), p, keys);
          Gemm(false, true, rows, keys, dvd, T(1), do0, h * dvd, v0, hk * dvd, T(0), ds, keys);
          for (int64_t r = 0; r < rows; ++r) {
            T *pr = p + r * keys, *dsr = ds + r * keys;
            const int64_t seen = i0 + r + 1;
            const T lse_r = ls[(bi * h + hi) * t + i0 + r];
            T pdp = 0;  // sum_j p_j dp_j
            for (int64_t j = 0; j < seen; ++j) {
              pr[j] = std::exp(pr[j] - lse_r);
              pdp += pr[j] * dsr[j];
            }
            for (int64_t j = 0; j < seen; ++j) dsr[j] = pr[j] * (dsr[j] - pdp) * sc;
            std::fill(pr + seen, pr + keys, T(0));
            std::fill(dsr + seen, dsr + keys, T(0));
          }
          Gemm(false, false, rows, dqk, keys, T(1), ds, keys, k0, hk * dqk, T(0), dqs + ((bi * t + i0) * h + hi) * dqk,
               h * dqk);
          Gemm(true, false, keys, dqk, rows, T(1), ds, keys, q0, h * dqk, T(1), dk0, hk * dqk);
          Gemm(true, false, keys, dvd, rows, T(1), p, keys, do0, h * dvd, T(1), dv0, hk * dvd);
        }
    }
  return absl::OkStatus();
}

}  // namespace

absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& lse, KvGroups groups) {
  LRKV_CPU_FLOAT_DISPATCH(q.dtype(), Forward, q, k, v, scale, o, lse, groups);
}
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& lse, double scale, Tensor& dq, Tensor& dk, Tensor& dv,
                                     KvGroups groups) {
  LRKV_CPU_FLOAT_DISPATCH(q.dtype(), Backward, dout, q, k, v, lse, scale, dq, dk, dv, groups);
}

}  // namespace lrkv::cpu
