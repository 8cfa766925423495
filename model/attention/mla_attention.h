// MLA as in DeepSeek-V2: keys and values come from a per-token latent of width c (kv_lora_rank),
// RMS-normalised; a decoupled RoPE key of width d_R is shared by all heads; queries are either one
// projection or compressed through a latent of width c' (q_lora_rank) with its own RMSNorm.
//   queries: wq (d, H (d_n + d_R))  or  wq_down (d, c'), q_norm.weight (c'), wq_up (c', H (d_n + d_R))
//   wkv_down (d, c), kv_norm.weight (c), wk_up (c, H d_n), wv_up (c, H d_v), wk_rope (d, d_R)
// Each head's query and key are [nope (d_n); rope (d_R)]; RoPE acts on the last d_R entries.
// Inference caches the latent and the RoPE key: c + d_R values per token per layer. Under QK-norm
// it also caches each head's key scale 1 / rms(k_h), H values more: the norm of a key needs its
// up-projection, which decoding otherwise never applies to a cached position.
// Decoding one token absorbs the up-projections (attention_variant.h): scores
// (q_nope,h W_UK,h^T . c + q_rope . k_rope) times the key scale, over the parts in place, outputs
// (sum p c) W_UV,h.
// Tensor parallelism: the down-projections, their norms and wk_rope are replicated on every rank
// (gradients summed over TP); wq or wq_up, wk_up and wv_up are split by head.
#pragma once

#include "model/attention/attention_variant.h"
#include "model/attention/latent_projection.h"

namespace lrkv {

struct MlaSaved final : VariantSaved {
  LatentSaved kv;
  LatentSaved q;  // with query compression (q_lora_rank > 0) only
};

class MlaAttention final : public AttentionVariant {
 public:
  static absl::StatusOr<std::unique_ptr<AttentionVariant>> Create(const ModelConfig& config, const std::string& prefix,
                                                                  ParameterSet& params);
  LRKV_ATTENTION_VARIANT_OVERRIDES
  int64_t KvCacheValuesPerToken() const override;
  bool AbsorbsDecoding() const override { return true; }
  absl::Status DecodeAbsorbed(const Tensor& q, const std::vector<Tensor>& past, double scale, Tensor& o) override;

 private:
  absl::Status KeysOf(const Tensor& latent, const Tensor& k_rope, Tensor& k);
  absl::Status KeysValuesOf(const Tensor& latent, const Tensor& k_rope, Tensor& k, Tensor& v);
  // Absorbed decoding's two maps (attention_variant.h): q (N, H, Dqk) -> q_abs (N, H, c + d_R),
  // o_abs (N, H, c) -> o (N, H, Dv).
  absl::Status AbsorbQueries(const Tensor& q, Tensor& q_abs);
  absl::Status ExpandOutputs(const Tensor& o_abs, Tensor& o);

  AttentionDims dims_{};
  int64_t kv_rank_ = 0, nope_dim_ = 0;
  bool qk_norm_ = false;  // the layer's QK-norm: the cache then holds the key scales
  double norm_eps_ = 0;
  LatentQuery query_;
  LatentProjection kv_latent_;
  Parameter *wk_up_ = nullptr, *wv_up_ = nullptr, *wk_rope_ = nullptr;
};

}  // namespace lrkv
