// Causal softmax attention over per-head or grouped K/V, with query-key width Dqk and value width Dv
// allowed to differ (MLA). Query head h reads KV head h / (H / Hk): Hk = H is MHA, 1 < Hk < H is GQA,
// Hk = 1 is MQA.
//   q: (B, T, H, Dqk)   k: (B, T, Hk, Dqk)   v: (B, T, Hk, Dv)   o: (B, T, H, Dv)
//   lse: (B, H, T), each query row's log-sum-exp of its scaled scores, the one thing forward saves
//        for backward, on every backend (AccumDType: fp32, or fp64 for f64 inputs). No (B, H, T, T)
//        tensor exists anywhere: backward recomputes each row's probabilities from q, k and lse
//        (FlashAttention-2's scheme), so attention memory grows with T, not T^2.
// FLOPs counted (kAttentionCore): forward 2 (Dqk + Dv) per causal pair, backward twice that, with
// T (T + 1) / 2 pairs per (batch, head).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// Which KV head a query head reads. Under tensor parallelism a rank may hold a block of the query
// heads but every KV head (replicated when kv_heads is not a multiple of tp): local query head h is
// then global head h + q_head_offset and reads KV head (h + q_head_offset) / group.
struct KvGroups {
  int64_t group = 0;  // query heads per KV head; 0: H / Hk, every query head of the model local
  int64_t q_head_offset = 0;
};


// Decoding passes fewer queries than keys, k, v: (B, T_k, Hk, D) with T_k > T: the queries are then
// positions T_k - T .. T_k - 1, each seeing the keys up to its own (CPU only so far).
absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& lse, KvGroups groups = {});
// dq written; dk, dv written (summed over the query heads of each group; zero for KV heads no
// local query head reads).
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& lse, double scale, Tensor& dq, Tensor& dk, Tensor& dv,
                                     KvGroups groups = {});

}  // namespace lrkv
