// The analytic cost model of a config: parameters by component, matmul FLOPs by component, and KV
// cache size. Convention (the same as the runtime's op counter, which must agree exactly):
//   - 2 FLOPs per multiply-add; backward = 2 x forward, so training = 3 x forward; recomputation
//     is not counted (model FLOPs);
//   - every attention weight, MLP weight and the LM head (2 d V per token) is used once per token;
//     LRKV in its factored form (X W_shared, X U_h, (X U_h) B_h^T), MLA with its query path,
//     down-projection, decoupled RoPE key, up-projections and output; the embedding lookup is free;
//   - the causal attention core counts T (T + 1) / 2 query-key pairs per sequence, 2 (Dqk + Dv) FLOPs
//     per pair and head; the full T^2 figure is reported beside it;
//   - norms, RoPE, softmax and activations are outside the matmul total.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.pb.h"

namespace lrkv {

struct ModelCost {
  // Parameters.
  int64_t params_total = 0;
  int64_t params_embedding = 0;       // token embedding (shared with the LM head when tied)
  int64_t params_lm_head = 0;         // 0 when tied
  int64_t params_attention = 0;       // all layers, projections only
  int64_t params_mlp = 0;             // all layers
  int64_t params_norm = 0;            // all gains and biases (MLA's latent norms count as attention)
  // Forward matmul FLOPs per sequence of seq_len tokens.
  int64_t attention_projection_flops = 0;
  int64_t attention_core_flops = 0;   // causal pairs
  int64_t attention_core_full_flops = 0;  // all T^2 pairs, for comparison with the PaLM convention
  int64_t mlp_flops = 0;
  int64_t lm_head_flops = 0;
  int64_t forward_flops() const { return attention_projection_flops + attention_core_flops + mlp_flops + lm_head_flops; }
  // KV cache per token: values per layer and per model.
  int64_t kv_cache_values_per_token_per_layer = 0;
  int64_t kv_cache_values_per_token = 0;
};

// `config` must have passed FillDefaults and ValidateModelConfig.
ModelCost AnalyzeModel(const ModelConfig& config);

// One rank of a tensor- and pipeline-parallel layout (pipeline stage `stage`, any TP rank: the TP
// ranks of a stage do the same work; DP does not change a rank's work per sequence). Under TP each
// rank does 1/tp of every split matmul and of the attention core, plus all of the work on
// replicated weights (LRKV's W_shared, replicated K/V of MQA and small-kv GQA, MLA's
// down-projections and RoPE key): that part is repeated on every TP rank and reported separately.
struct RankCost {
  int first_layer = 0, end_layer = 0;  // the stage's layers
  int64_t params = 0;                  // held by the rank (replicas and the tied embedding copy included)
  int64_t forward_flops = 0;           // per sequence, everything this rank computes
  int64_t replicated_forward_flops = 0;  // of which on replicated weights (the same on every TP rank)
  int64_t kv_cache_values_per_token_per_layer = 0;  // what the rank caches for its heads
};

// One entry per pipeline stage. Over the whole job, per sequence: sum over stages of tp x
// Forward work per sequence that activation recomputation redoes in backward: the attention cores
// (ATTENTION) or every block's forward (BLOCK). Hardware FLOPs = 3 x forward + this (HFU; MFU keeps
// the model FLOPs).
int64_t RecomputeForwardFlops(const ModelCost& cost, Recompute mode);

// forward_flops = AnalyzeModel's forward FLOPs + (tp - 1) x the replicated work.
std::vector<RankCost> AnalyzeLayout(const ModelConfig& config, int tp, int pp);

}  // namespace lrkv
