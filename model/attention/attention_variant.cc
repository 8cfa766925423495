#include "model/attention/attention_variant.h"

#include <cmath>

#include "model/attention/grouped_query_attention.h"
#include "model/attention/lrkv_attention.h"
#include "model/attention/mla_attention.h"

namespace lrkv {

double LinearInitStd(int64_t fan_in) { return 1.0 / std::sqrt(static_cast<double>(fan_in)); }

absl::StatusOr<std::unique_ptr<AttentionVariant>> MakeAttentionVariant(const ModelConfig& config,
                                                                       const std::string& prefix,
                                                                       ParameterSet& params) {
  switch (config.attention()) {
    case MHA:
    case GQA:
    case MQA:
      return GroupedQueryAttention::Create(config, prefix, params);
    case LRKV:
      return LrkvAttention::Create(config, prefix, params);
    case MLA:
      return MlaAttention::Create(config, prefix, params);
    default:
      return absl::InvalidArgumentError("model.attention must be one of MHA, GQA, MQA, MLA, LRKV");
  }
}

}  // namespace lrkv
