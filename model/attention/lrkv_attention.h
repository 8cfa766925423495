// LRKV (arXiv 2601.11471): per layer one shared K and V projection plus per-head low-rank residuals,
// computed in the factored form, for K (and likewise V):
//   K_h = X W_shared + (X U_h) B_h^T
//   wq: (d, H d_h)   wk_shared, wv_shared: (d, d_h)
//   uk, uv: (d, H r), U_h = columns [h r, (h+1) r)   bk, bv: (H, d_h, r), B_h = bk[h]
// Queries are per head at full rank. r = 0 is MQA. Init follows the paper: W_shared like any
// projection (std 1/sqrt(d)); U and B with std (0.01 / (d r))^(1/4) each, so that
// ||U_h B_h^T||_F is about 0.1 ||W_shared||_F.
// Inference caches K_shared, V_shared (d_h each) and the latents X U_h (r per head, K and V):
// 2 (d_h + H r) values per token per layer.
// Tensor parallelism (docs/attention-variants.md, "Tensor parallelism"): wq, uk,
// uv, bk, bv are split by head; wk_shared and wv_shared are replicated on every rank, which
// computes K_shared and V_shared itself; their gradients are partial sums over the rank's heads,
// summed over the TP group once per step. dx is partial and summed by the layer's all-reduce, so
// nothing is counted twice.
#pragma once

#include "model/attention/attention_variant.h"

namespace lrkv {

// Kept for backward: the per-head latents x U_h of K and V (what decoding caches beside K_shared and
// V_shared).
struct LrkvSaved final : VariantSaved {
  Tensor k_latent, v_latent;  // (N, H r)
};

class LrkvAttention final : public AttentionVariant {
 public:
  static absl::StatusOr<std::unique_ptr<AttentionVariant>> Create(const ModelConfig& config, const std::string& prefix,
                                                                  ParameterSet& params);
  LRKV_ATTENTION_VARIANT_OVERRIDES
  int64_t KvCacheValuesPerToken() const override { return kv_cache_values_; }
  // Decoding: values [V_shared; the V latent] per head, B_h applied after the core.
  int64_t DecodeValueWidth() const override { return dims_.v_dim + rank_; }
  absl::Status FinishDecodeValues(const Tensor& o_wide, Tensor& o) override;
  bool DecodesFactored() const override { return true; }
  absl::Status DecodeFactored(const Tensor& q, const std::vector<Tensor>& past, const KeyTransform& keys, double scale,
                              Tensor& o_wide, Tensor& lse) override;

  static double FactorInitStd(int64_t d_model, int64_t rank);

 private:
  // One of the two factored projections (K or V).
  struct Factored {
    Parameter *shared, *u, *b;
  };
  absl::Status FactoredRows(const Factored& f, const Tensor& x, Tensor& shared, Tensor& latent);
  absl::Status Expand(const Factored& f, const Tensor& shared, const Tensor& latent, Tensor& out);
  absl::Status ForwardFactored(const Factored& f, const Tensor& x, Tensor& out, Tensor& latent);
  absl::Status BackwardFactored(const Factored& f, const Tensor& x, const Tensor& latent, const Tensor& dout,
                                Tensor& dx);

  AttentionDims dims_{};
  int64_t rank_ = 0, kv_cache_values_ = 0;
  Parameter* wq_ = nullptr;
  Factored k_{}, v_{};
};

}  // namespace lrkv
