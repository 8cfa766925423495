#include "model/flop_model.h"

#include <algorithm>

#include "model/attention/variant_registry.h"
#include "model/config.h"

namespace lrkv {
namespace {

// The variant's own count (model/attention/variant_registry.h).
AttentionCost Attention(const ModelConfig& c, int tp = 1) { return VariantOf(c).cost(c, tp); }

}  // namespace

ModelCost AnalyzeModel(const ModelConfig& c) {
  ModelCost cost;
  const int64_t d = c.d_model(), v = c.vocab_size(), l = c.n_layers(), t = c.seq_len(), h = c.n_heads();
  const AttentionCost a = Attention(c);
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
  cost.attention_core_flops = 2 * l * h * a.branches * (a.qk_dim + a.v_dim) * (t * (t + 1) / 2);
  cost.attention_core_full_flops = 2 * l * h * a.branches * (a.qk_dim + a.v_dim) * t * t;
  cost.mlp_flops = 2 * l * mlp_per_layer * t;
  cost.lm_head_flops = 2 * d * v * t;

  cost.kv_cache_values_per_token_per_layer = a.kv_cache;
  cost.kv_cache_values_per_token = l * a.kv_cache;
  return cost;
}

int64_t RecomputeForwardFlops(const ModelCost& c, Recompute mode) {
  switch (mode) {
    case ATTENTION: return c.attention_core_flops;
    case BLOCK: return c.attention_projection_flops + c.attention_core_flops + c.mlp_flops;
    default: return 0;
  }
}

std::vector<RankCost> AnalyzeLayout(const ModelConfig& c, int tp, int pp) {
  const int64_t d = c.d_model(), v = c.vocab_size(), t = c.seq_len(), h = c.n_heads();
  const AttentionCost a = Attention(c, tp);
  const int64_t replicated = tp > 1 ? a.replicated_matmul_params : 0;
  const int64_t norm_width = c.norm() == LAYERNORM ? 2 * d : d;
  const int64_t mlp = (c.activation() == SWIGLU ? 3 : 2) * d * c.d_ff();
  // One layer on one rank: its share of the split weights and heads, all of the replicated weights.
  const int64_t layer_params = (a.matmul_params - replicated) / tp + replicated + a.norm_params + mlp / tp +
                               2 * norm_width;
  const int64_t layer_flops = 2 * t * ((a.matmul_params - replicated) / tp + replicated) +
                              2 * (h / tp) * a.branches * (a.qk_dim + a.v_dim) * (t * (t + 1) / 2) + 2 * t * mlp / tp;
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
