#include "model/flop_model.h"

#include <algorithm>

#include "model/config.h"

namespace lrkv {
namespace {

// Matmul parameters of one attention layer (each used once per token), and its core widths.
struct AttentionShape {
  int64_t matmul_params = 0;
  int64_t norm_params = 0;  // MLA's latent norms
  int64_t qk_dim = 0, v_dim = 0;
  int64_t kv_cache = 0;
  // Under tensor parallelism over tp ranks: the matmul weights replicated on every rank (the rest
  // is split), and what one rank caches per token.
  int64_t replicated_matmul_params = 0;
  int64_t kv_cache_per_rank = 0;
};

AttentionShape Attention(const ModelConfig& c, int tp = 1) {
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
      const bool split_kv = hk % tp == 0;  // otherwise wk, wv are replicated
      a.replicated_matmul_params = split_kv ? 0 : 2 * d * hk * dh;
      a.kv_cache_per_rank = split_kv ? a.kv_cache / tp : a.kv_cache;
      break;
    }
    case LRKV: {
      const int64_t r = c.lrkv_rank();
      // wq; wk_shared, wv_shared; uk, uv; bk, bv; wo
      a.matmul_params = d * h * dh + 2 * d * dh + 2 * d * h * r + 2 * h * dh * r + h * dh * d;
      a.qk_dim = a.v_dim = dh;
      a.kv_cache = 2 * (dh + h * r);
      a.replicated_matmul_params = 2 * d * dh;  // wk_shared, wv_shared
      a.kv_cache_per_rank = 2 * (dh + h / tp * r);
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
      a.replicated_matmul_params = (q == 0 ? 0 : d * q) + d * kv + d * dr;  // down-projections, RoPE key
      a.kv_cache_per_rank = a.kv_cache;  // the latent serves every head
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

std::vector<RankCost> AnalyzeLayout(const ModelConfig& c, int tp, int pp) {
  const int64_t d = c.d_model(), v = c.vocab_size(), t = c.seq_len(), h = c.n_heads();
  const AttentionShape a = Attention(c, tp);
  const int64_t replicated = tp > 1 ? a.replicated_matmul_params : 0;
  const int64_t norm_width = c.norm() == LAYERNORM ? 2 * d : d;
  const int64_t mlp = (c.activation() == SWIGLU ? 3 : 2) * d * c.d_ff();
  // One layer on one rank: its share of the split weights and heads, all of the replicated weights.
  const int64_t layer_params = (a.matmul_params - replicated) / tp + replicated + a.norm_params + mlp / tp +
                               2 * norm_width;
  const int64_t layer_flops = 2 * t * ((a.matmul_params - replicated) / tp + replicated) +
                              2 * (h / tp) * (a.qk_dim + a.v_dim) * (t * (t + 1) / 2) + 2 * t * mlp / tp;
  std::vector<RankCost> stages(pp);
  const int l = c.n_layers(), base = l / pp, extra = l % pp;  // parallel/mesh.h SplitRange's rule
  for (int s = 0; s < pp; ++s) {
    RankCost& r = stages[s];
    r.first_layer = s * base + std::min(s, extra);
    r.end_layer = r.first_layer + base + (s < extra ? 1 : 0);
    const int64_t layers = r.end_layer - r.first_layer;
    r.params = layers * layer_params;
    r.forward_flops = layers * layer_flops;
    r.replicated_forward_flops = layers * 2 * t * replicated;
    r.kv_cache_values_per_token_per_layer = a.kv_cache_per_rank;
    const bool first = s == 0, last = s == pp - 1;
    if (first || (last && c.tie_embeddings())) r.params += v / tp * d;  // embedding (or its tied copy)
    if (last) {
      r.params += norm_width + (c.tie_embeddings() ? 0 : v / tp * d);
      r.forward_flops += 2 * d * (v / tp) * t;
    }
  }
  return stages;
}

}  // namespace lrkv
