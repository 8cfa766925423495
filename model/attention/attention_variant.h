// What distinguishes the attention variants: how the normalised input x becomes per-head queries,
// keys and values. Everything after that (QK-norm, RoPE, the causal core, the output projection) is
// shared and lives in attention_layer.h.
//
// Shapes (N = B * T tokens; under tensor parallelism H and Hk are this rank's heads, see dims()):
//   x: (B, T, d)   q: (B, T, H, Dqk)   k: (B, T, Hk, Dqk)   v: (B, T, Hk, Dv)
// H counts the core's heads. A variant whose output head sums several attentions (MLRA's branches)
// gives each output head `branches` core heads, branch-major: core head a * (H / branches) + i is
// branch a of output head i; the layer sums them before W_O.
// Under tensor parallelism (params.tp().size > 1) a variant holds the query heads
// [index H_total / tp, (index + 1) H_total / tp) and either the matching block of KV heads or, when
// the KV heads do not split evenly, all of them (replicated; kv_groups says which one each local
// query head reads). Its Backward then writes a partial dx: the sum over the TP group is the true one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/attention/head_maps.h"
#include "model/config.pb.h"
#include "model/parameter.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/factored_decode_attention.h"
#include "runtime/tensor.h"

namespace lrkv {

struct AttentionDims {
  int64_t heads;      // H, query heads the core sees (of this TP rank): output heads x branches
  int64_t kv_heads;   // Hk, KV heads the core sees (of this TP rank)
  int64_t qk_dim;     // Dqk
  int64_t v_dim;      // Dv
  int64_t rope_dims;  // RoPE acts on the last rope_dims entries of each q and k head
  KvGroups kv_groups = {};  // which KV head each query head reads (default: h / (H / Hk))
  int64_t branches = 1;     // core heads summed into one output head
};

// What a variant keeps from Forward for Backward: each variant derives a struct of named tensors
// (LrkvSaved, MlaSaved); a variant that needs nothing beyond x keeps none (null).
struct VariantSaved {
  virtual ~VariantSaved() = default;
};

class AttentionVariant {
 public:
  virtual ~AttentionVariant() = default;
  virtual AttentionDims dims() const = 0;
  // q, k, v are allocated by the caller with the shapes above and written here; `saved` is set to
  // what Backward will need.
  virtual absl::Status Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v,
                               std::unique_ptr<VariantSaved>& saved) = 0;
  // Adds to the parameter gradients (each += its contribution); writes dx (B, T, d).
  virtual absl::Status Backward(const Tensor& x, const VariantSaved* saved, const Tensor& dq, const Tensor& dk,
                                const Tensor& dv, Tensor& dx) = 0;
  // Values cached per token per layer at inference, whole model (MHA: 2 H d_h; LRKV: 2 (d_h + H r);
  // MLA: c + d_R, plus H key scales under QK-norm).
  virtual int64_t KvCacheValuesPerToken() const = 0;

  // Decoding with a KV cache (model/kv_cache.h) splits Forward into what a new token needs and what
  // the cache keeps. Each produces exactly what Forward would for the same positions.
  // The widths of the parts this rank caches per token (MHA: K, V; LRKV: K_shared, V_shared and the
  // two latents; MLA: the latent, under QK-norm its heads' key scales, and the RoPE key); their sum
  // is this rank's KV cache per token.
  virtual std::vector<int64_t> CacheParts() const = 0;
  // x (B, T, d) -> q (B, T, H, Dqk), allocated by the caller.
  virtual absl::Status Queries(const Tensor& x, Tensor& q) = 0;
  // x (B, T, d) -> one (B, T, width) tensor per part, allocated here.
  virtual absl::Status CacheRows(const Tensor& x, std::vector<Tensor>& rows) = 0;
  // One (B, S, width) tensor per part, the cached positions -> k (B, S, Hk, Dqk) as Forward gives
  // them (before QK-norm and RoPE) and v (B, S, Hk, DecodeValueWidth()), allocated by the caller.
  virtual absl::Status KeysValues(const std::vector<Tensor>& parts, Tensor& k, Tensor& v) = 0;
  // The values KeysValues gives: Forward's (width Dv), or, for a variant whose values are a shared
  // part plus a per-head latent times an up-projection (LRKV), [shared; latent] per head, which the
  // core averages by the same probabilities; FinishDecodeValues then applies the up-projection to
  // the averaged latent, (1 x r)(r x Dv) per head, instead of rebuilding every position's V_h.
  virtual int64_t DecodeValueWidth() const { return dims().v_dim; }
  // o_wide (1, n, H, DecodeValueWidth()) -> o (1, n, H, Dv), for a variant whose widths differ.
  virtual absl::Status FinishDecodeValues(const Tensor& o_wide, Tensor& o);
  // True when the parts are exactly {K, V} (KeysValues copies them): the decoder then caches the
  // keys QK-normed and rotated, ready for the core, and reads both in place.
  virtual bool CachesKeysAndValues() const { return false; }
  // Decoding one token with the up-projections absorbed (DeepSeek-V2): a variant whose keys are a
  // latent (per block) times an up-projection plus one RoPE key shared by every head may answer
  // true. Its last cache part must be the RoPE key, which the layer rotates at its position as it
  // caches it. Under QK-norm, which acts on the whole key, the variant also caches each key's
  // 1 / rms, computed once from the position's key (runtime/ops/latent_decode_attention.h). For one
  // token no key or value is rebuilt: the variant maps the query into the latent space, attends
  // over the cached rows as one KV head per latent (the values are the same rows) and maps the
  // outputs back out. A prompt's many queries take the rebuilding path (KeysValues), the RoPE keys
  // already rotated.
  virtual bool AbsorbsDecoding() const { return false; }
  // q (1, 1, H, Dqk), normed and rotated, at position len - 1; past: one (1, len, width) per cache
  // part; o (1, 1, H, Dv) written, as the core would give it. `scale`: the softmax scale.
  virtual absl::Status DecodeAbsorbed(const Tensor& q, const std::vector<Tensor>& past, double scale, Tensor& o);

  // Decoding one token without materialising any key (LRKV, whose keys are a shared key plus
  // per-head low-rank terms): a variant answering true attends over its cache parts directly, the
  // layer's QK-norm and RoPE applied to each key inside the kernel
  // (runtime/ops/factored_decode_attention.h). q (1, 1, H, Dqk), rotated, at position len - 1;
  // past: one (1, len, width) per part; o_wide (1, 1, H, DecodeValueWidth()), for
  // FinishDecodeValues; lse (1, H, 1).
  virtual bool DecodesFactored() const { return false; }
  virtual absl::Status DecodeFactored(const Tensor& q, const std::vector<Tensor>& past, const KeyTransform& keys,
                                      double scale, Tensor& o_wide, Tensor& lse);

  // Each core head's query and key as linear maps of x (head_maps.h), this rank's heads.
  virtual absl::StatusOr<HeadMaps> QueryKeyMaps() const = 0;
};

// What each variant's class declares to implement the interface, written once here (its .cc defines
// them; dims() returns its dims_ member).
#define LRKV_ATTENTION_VARIANT_OVERRIDES                                                                  \
  AttentionDims dims() const override { return dims_; }                                                  \
  absl::Status Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v, std::unique_ptr<VariantSaved>& saved) \
      override;                                                                                          \
  absl::Status Backward(const Tensor& x, const VariantSaved* saved, const Tensor& dq, const Tensor& dk,  \
                        const Tensor& dv, Tensor& dx) override;                                          \
  std::vector<int64_t> CacheParts() const override;                                                      \
  absl::Status Queries(const Tensor& x, Tensor& q) override;                                             \
  absl::Status CacheRows(const Tensor& x, std::vector<Tensor>& rows) override;                           \
  absl::Status KeysValues(const std::vector<Tensor>& parts, Tensor& k, Tensor& v) override;              \
  absl::StatusOr<HeadMaps> QueryKeyMaps() const override;

// Registers the variant's parameters (this TP rank's blocks) under `prefix` ("layers.3.attn.").
absl::StatusOr<std::unique_ptr<AttentionVariant>> MakeAttentionVariant(const ModelConfig& config,
                                                                       const std::string& prefix,
                                                                       ParameterSet& params);

// Standard deviation of a linear weight with `fan_in` inputs (1/sqrt(fan_in)).
double LinearInitStd(int64_t fan_in);

}  // namespace lrkv
