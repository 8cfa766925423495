// Causal softmax attention over per-head or grouped K/V, with query-key width Dqk and value width Dv
// allowed to differ (MLA). Query head h reads KV head h / (H / Hk): Hk = H is MHA, 1 < Hk < H is GQA,
// Hk = 1 is MQA.
//   q: (B, T, H, Dqk)   k: (B, T, Hk, Dqk)   v: (B, T, Hk, Dv)   o: (B, T, H, Dv)
//   probs: (B, H, T, T), the softmax saved for backward (entries above the diagonal are not used).
// FLOPs counted (kAttentionCore): forward 2 (Dqk + Dv) per causal pair, backward twice that, with
// T (T + 1) / 2 pairs per (batch, head).
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& probs);
// dq written; dk, dv written (summed over the query heads of each group).
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& probs, double scale, Tensor& dq, Tensor& dk, Tensor& dv);

namespace cpu {
absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& probs);
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& probs, double scale, Tensor& dq, Tensor& dk, Tensor& dv);
}  // namespace cpu
namespace cuda {
absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& probs);
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& probs, double scale, Tensor& dq, Tensor& dk, Tensor& dv);
}  // namespace cuda

}  // namespace lrkv
