// MLRA, multi-head low-rank attention (arXiv 2603.02188; docs/attention-variants.md): MLA's KV
// latent cut into `blocks` blocks of width d_b = c / blocks, each normalised and up-projected on its
// own, one causal attention per block a head reads, the branches summed. With heads in G groups
// (G = H / heads_per_block_group), block b serves group b % G as that group's branch a = b / G, so
// every head sums A = blocks / G branches:
//   q_i                  as MLA's (wq, or wq_down -> q_norm -> wq_up): [q_nope (d_n); q_rope (d_R)]
//   c_b = RMSNorm_b(x W_down_b)                                        (N, d_b), b = 0 .. blocks-1
//   k_{i,a} = [alpha c_b W_UK[a]_i ; RoPE key x W_KR],  v_{i,a} = alpha / sqrt(A) c_b W_UV[a]_i
//   o_i = sum_a softmax(q_i k_{i,a}^T / sqrt(d_n + d_R)) v_{i,a}          alpha = sqrt(d / d_b)
// so the output scale 1/sqrt(A) (MLRA-4: 1/2, MLRA-2: 1/sqrt 2) rides on the values.
// Parameters: the query's; per block wkv_down.b (d, d_b) and kv_norm.b.weight (d_b); wk_up
// (A, d_b, H d_n) and wv_up (A, d_b, H d_v), head i's columns of branch a reading block a G + g(i);
// wk_rope (d, d_R); wo (H d_v, d) in the layer.
// The core sees A x H heads, branch-major (AttentionDims::branches): queries repeated per branch,
// keys and values per (branch, head). Cached at inference: the normed blocks and the RoPE key,
// c + d_R values per token per layer, which split by block over TP ranks when decoding; under
// QK-norm also each key's 1 / rms, one per (block, head reading it): blocks x heads_per_block_group
// values more (MLRA-4: 4 H), split with the blocks.
// Tensor parallelism in training partitions MLRA as MLA: the query's and every block's
// down-projection, the norms and wk_rope replicated (gradients summed over TP), wq / wq_up, wk_up
// and wv_up split by head. A rank computes every block, also those its heads do not read (their
// gradient is zero), so each rank does the replicated work the cost model counts.
// A model built for decoding (TpRank::decoding) at a tp that divides the blocks partitions by
// block instead: a rank holds blocks / tp latent blocks (and caches only those and the RoPE key),
// the whole query, up-projections and wo, computes every head over its blocks, and the layer's
// all-reduce sums the branches. Such a model is for inference only.
// Decoding one token absorbs the up-projections per block (attention_variant.h): a block's keys
// are [c_b; the rotated RoPE key], both read in place from the cache (the blocks share the RoPE key
// part), scaled by their cached 1 / rms under QK-norm, its readers' queries
// alpha q_nope,i W_UK[a]_i^T, their outputs (alpha / sqrt A) o W_UV[a]_i.
#pragma once

#include <vector>

#include "model/attention/attention_variant.h"
#include "model/attention/latent_projection.h"

namespace lrkv {

struct MlraSaved final : VariantSaved {
  LatentSaved q;                    // with query compression only
  std::vector<LatentSaved> blocks;  // latent block b (N, d_b): c_b before the alpha scale
};

class MlraAttention final : public AttentionVariant {
 public:
  static absl::StatusOr<std::unique_ptr<AttentionVariant>> Create(const ModelConfig& config, const std::string& prefix,
                                                                  ParameterSet& params);
  LRKV_ATTENTION_VARIANT_OVERRIDES
  int64_t KvCacheValuesPerToken() const override { return kv_values_per_token_; }
  bool AbsorbsDecoding() const override { return true; }
  absl::Status DecodeAbsorbed(const Tensor& q, const std::vector<Tensor>& past, double scale, Tensor& o) override;

 private:
  absl::Status QueriesOf(const Tensor& x, Tensor& q, LatentSaved& saved);
  absl::Status KeysOf(const std::vector<Tensor>& latents, const Tensor& k_rope, Tensor& k);
  absl::StatusOr<Tensor> KeyScalesOf(const std::vector<Tensor>& latents, const Tensor& k_rope);
  absl::Status KeysValuesOf(const std::vector<Tensor>& latents, const Tensor& k_rope, Tensor& k, Tensor& v);

  // This rank's heads [first, end) that read its latent block `block` (an index into blocks_) as
  // their branch `branch` (an index into wk_up, wv_up), computed in the core's branch slot `slot`.
  // Block `block` of this rank is branch `branch` (core slot `slot`) of local heads [first, end);
  // under QK-norm their key scales are at columns [scales, scales + end - first) of the scales part.
  struct Reader {
    int64_t block, branch, slot, first, end, scales;
  };

  AttentionDims dims_{};
  int64_t heads_ = 0;  // this rank's output heads
  int64_t kv_rank_ = 0, nope_dim_ = 0, block_width_ = 0;
  int64_t kv_values_per_token_ = 0;  // whole model
  bool qk_norm_ = false;             // the layer's QK-norm: the cache then holds the key scales
  double norm_eps_ = 0;
  int64_t scale_width_ = 0;          // key scales cached per token on this rank (the readers' heads)
  double k_scale_ = 0, v_scale_ = 0;  // alpha, alpha / sqrt(A)
  LatentQuery query_;
  std::vector<LatentProjection> blocks_;
  std::vector<Reader> readers_;  // one per block of this rank
  std::vector<std::vector<Reader>> reader_groups_;  // the readers of each head range, for decoding
  bool every_slot_read_ = true;  // false: some (branch slot, head) pairs have no block here (zero)
  Parameter *wk_up_ = nullptr, *wv_up_ = nullptr, *wk_rope_ = nullptr;
};

}  // namespace lrkv
