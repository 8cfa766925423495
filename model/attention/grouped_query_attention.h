// MHA, GQA and MQA: one implementation, since they differ only in the number of KV heads
// (Hk = H, H > Hk > 1, Hk = 1). Query head h reads KV head h / (H / Hk).
//   wq: (d, H d_h)   wk, wv: (d, Hk d_h)
// Tensor parallelism: wq column-parallel (by head); wk, wv column-parallel when Hk is a multiple of
// tp, otherwise replicated on every rank (MQA, small-Hk GQA) with their gradients summed over TP.
#pragma once

#include "model/attention/attention_variant.h"

namespace lrkv {

class GroupedQueryAttention final : public AttentionVariant {
 public:
  static absl::StatusOr<std::unique_ptr<AttentionVariant>> Create(const ModelConfig& config, const std::string& prefix,
                                                                  ParameterSet& params);
  LRKV_ATTENTION_VARIANT_OVERRIDES
  int64_t KvCacheValuesPerToken() const override { return kv_cache_values_; }
  bool CachesKeysAndValues() const override { return true; }

 private:
  AttentionDims dims_{};
  int64_t kv_cache_values_ = 0;
  Parameter *wq_ = nullptr, *wk_ = nullptr, *wv_ = nullptr;
};

}  // namespace lrkv
