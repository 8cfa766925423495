#include "model/attention/attention_variant.h"

#include <cmath>

#include "model/attention/variant_registry.h"
#include "runtime/status.h"

namespace lrkv {

double LinearInitStd(int64_t fan_in) { return 1.0 / std::sqrt(static_cast<double>(fan_in)); }

absl::StatusOr<std::unique_ptr<AttentionVariant>> MakeAttentionVariant(const ModelConfig& config,
                                                                       const std::string& prefix,
                                                                       ParameterSet& params) {
  LRKV_TRY_ASSIGN(const AttentionVariantInfo* variant, FindAttentionVariant(config.attention()));
  return variant->create(config, prefix, params);
}

absl::Status AttentionVariant::FinishDecodeValues(const Tensor&, Tensor&) {
  return absl::UnimplementedError("this attention variant decodes with Forward's values");
}

absl::Status AttentionVariant::DecodeAbsorbed(const Tensor&, const std::vector<Tensor>&, double, Tensor&) {
  return absl::UnimplementedError("this attention variant does not absorb its up-projections when decoding");
}

absl::Status AttentionVariant::DecodeFactored(const Tensor&, const std::vector<Tensor>&, const KeyTransform&, double,
                                              Tensor&, Tensor&) {
  return absl::UnimplementedError("this attention variant rebuilds its keys when decoding");
}

}  // namespace lrkv
