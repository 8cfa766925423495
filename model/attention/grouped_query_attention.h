// MHA, GQA and MQA: one implementation, since they differ only in the number of KV heads
// (Hk = H, H > Hk > 1, Hk = 1). Query head h reads KV head h / (H / Hk).
//   wq: (d, H d_h)   wk, wv: (d, Hk d_h)
#pragma once

#include "model/attention/attention_variant.h"

namespace lrkv {

class GroupedQueryAttention final : public AttentionVariant {
 public:
  static absl::StatusOr<std::unique_ptr<AttentionVariant>> Create(const ModelConfig& config, const std::string& prefix,
                                                                  ParameterSet& params);
  AttentionDims dims() const override { return dims_; }
  absl::Status Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v, VariantSaved& saved) override;
  absl::Status Backward(const Tensor& x, const VariantSaved& saved, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv, Tensor& dx) override;
  int64_t KvCacheValuesPerToken() const override { return 2 * dims_.kv_heads * dims_.qk_dim; }

 private:
  AttentionDims dims_{};
  Parameter *wq_ = nullptr, *wk_ = nullptr, *wv_ = nullptr;
};

}  // namespace lrkv
