// The attention variants, each registered by its own file: everything the rest of lrkv needs to
// know about a variant lives with its forward and backward, so adding one is adding a file
// (model/attention/NAME_attention.cc, found by that name; model/CMakeLists.txt), its config fields,
// its configs and its PyTorch reference function, and nothing in shared code. The config checks,
// the model factory, the cost model (`lrkv flops`, the memory check) and the tests ask the
// registry; a kind with no registered variant is refused at start-up, never counted as zero.
//
// A variant file defines
//   LRKV_ATTENTION_VARIANTS(NAME_attention) { return {AttentionVariantInfo{...}, ...}; }
// (one file may register several kinds: MHA, GQA and MQA share one implementation).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/attention/attention_variant.h"
#include "model/config.pb.h"
#include "model/parameter.h"

namespace lrkv {

// One attention layer's weights and widths as the cost model counts them (every matmul weight is
// used once per token; the core is H x branches heads of (qk_dim + v_dim) per token pair).
struct AttentionCost {
  int64_t matmul_params = 0;
  int64_t norm_params = 0;  // norms inside the attention (MLA's latent norms)
  int64_t qk_dim = 0, v_dim = 0;
  int64_t branches = 1;     // core attentions per head, summed (AttentionDims::branches)
  int64_t kv_cache = 0;     // values cached per token per layer, whole model
  // Under tensor parallelism over tp ranks: the matmul weights replicated on every rank (the rest
  // is split by head), and what one rank caches per token per layer.
  int64_t replicated_matmul_params = 0;
  int64_t kv_cache_per_rank = 0;
  // Training memory on one TP rank (model/memory_model.h), per token: the core's heads and KV heads
  // (q, k, v, o and the log-sum-exp are sized by them), the values the variant's own Forward keeps
  // for Backward (LrkvSaved, MlaSaved), and the most its Backward has allocated at once.
  int64_t core_heads_per_rank = 0, core_kv_heads_per_rank = 0;
  int64_t saved_per_token = 0, backward_per_token = 0;
  int64_t saved_stats_per_token = 0;  // of saved_per_token, the fp32 statistics (norms' rstd)
};

struct AttentionVariantInfo {
  AttentionKind kind = ATTENTION_UNSPECIFIED;
  std::string name;                      // "lrkv": messages, file names of configs and test cases
  std::vector<std::string> own_fields;   // ModelConfig fields only this variant reads ("lrkv_rank")
  std::function<void(ModelConfig&)> fill_defaults;             // its fields left at 0
  std::function<absl::Status(const ModelConfig&)> validate;    // its fields; messages name them
  // Its fields at GPT-2-small width (d 768, 12 heads of 64), ModelConfig text: the benchmarks' shape.
  std::string gpt2_small_fields;
  std::function<int32_t(const ModelConfig&)> kv_heads;         // KV heads the attention core sees
  std::function<AttentionCost(const ModelConfig&, int tp)> cost;
  // Registers the layer's parameters (this TP rank's blocks) under `prefix` ("layers.3.attn.").
  std::function<absl::StatusOr<std::unique_ptr<AttentionVariant>>(const ModelConfig&, const std::string& prefix,
                                                                   ParameterSet&)>
      create;
};

#define LRKV_ATTENTION_VARIANTS(stem) std::vector<AttentionVariantInfo> AttentionVariantsOf_##stem()

// Every registered variant, in AttentionKind order.
const std::vector<AttentionVariantInfo>& AttentionVariants();

// The variant of `kind`; InvalidArgument listing the registered ones when there is none.
absl::StatusOr<const AttentionVariantInfo*> FindAttentionVariant(AttentionKind kind);

// The same for a config that has passed validation: a missing variant here is a bug, and stops the
// process with a message rather than computing anything.
const AttentionVariantInfo& VariantOf(const ModelConfig& config);

}  // namespace lrkv
