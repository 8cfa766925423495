#include "model/flop_model.h"

#include "model/config.h"

namespace lrkv {
namespace {

// Matmul parameters of one attention layer (each used once per token), and its core widths.
struct AttentionShape {
  int64_t matmul_params = 0;
  int64_t norm_params = 0;  // MLA's latent norms
  int64_t qk_dim = 0, v_dim = 0;
  int64_t kv_cache = 0;
};

AttentionShape Attention(const ModelConfig& c) {
  const int64_t d = c.d_model(), h = c.n_heads(), dh = HeadDim(c);
  AttentionShape a;
  switch (c.attention()) {
    case MHA:
    case GQA:
    case MQA: {
      const int64_t hk = AttentionKvHeads(c);
      a.matmul_params = d * h * dh + 2 * d * hk * dh + h * dh * d;
      a.qk_dim = a.v_dim = dh;
      a.kv_cache = 2 * hk * dh;
      break;
    }
    case LRKV: {
      const int64_t r = c.lrkv_rank();
      // wq; wk_shared, wv_shared; uk, uv; bk, bv; wo
      a.matmul_params = d * h * dh + 2 * d * dh + 2 * d * h * r + 2 * h * dh * r + h * dh * d;
      a.qk_dim = a.v_dim = dh;
      a.kv_cache = 2 * (dh + h * r);
      break;
    }
    case MLA: {
      const MlaConfig& m = c.mla();
      const int64_t dn = m.nope_dim(), dr = m.rope_dim(), dv = m.v_dim(), kv = m.kv_lora_rank(), q = m.q_lora_rank();
      const int64_t query = q == 0 ? d * h * (dn + dr) : d * q + q * h * (dn + dr);
      a.matmul_params = query + d * kv + kv * h * dn + kv * h * dv + d * dr + h * dv * d;
      a.norm_params = kv + q;
      a.qk_dim = dn + dr;
      a.v_dim = dv;
      a.kv_cache = kv + dr;
      break;
    }
    default:
      break;
  }
  return a;
}

}  // namespace

ModelCost AnalyzeModel(const ModelConfig& c) {
  ModelCost cost;
  const int64_t d = c.d_model(), v = c.vocab_size(), l = c.n_layers(), t = c.seq_len(), h = c.n_heads();
  const AttentionShape a = Attention(c);
  const int64_t mlp_per_layer = (c.activation() == SWIGLU ? 3 : 2) * d * c.d_ff();
  const int64_t norm_width = c.norm() == LAYERNORM ? 2 * d : d;

  cost.params_embedding = v * d;
  cost.params_lm_head = c.tie_embeddings() ? 0 : v * d;
  cost.params_attention = l * (a.matmul_params + a.norm_params);
  cost.params_mlp = l * mlp_per_layer;
  cost.params_norm = (2 * l + 1) * norm_width;
  cost.params_total =
      cost.params_embedding + cost.params_lm_head + cost.params_attention + cost.params_mlp + cost.params_norm;

  cost.attention_projection_flops = 2 * l * a.matmul_params * t;
  cost.attention_core_flops = 2 * l * h * (a.qk_dim + a.v_dim) * (t * (t + 1) / 2);
  cost.attention_core_full_flops = 2 * l * h * (a.qk_dim + a.v_dim) * t * t;
  cost.mlp_flops = 2 * l * mlp_per_layer * t;
  cost.lm_head_flops = 2 * d * v * t;

  cost.kv_cache_values_per_token_per_layer = a.kv_cache;
  cost.kv_cache_values_per_token = l * a.kv_cache;
  return cost;
}

}  // namespace lrkv
