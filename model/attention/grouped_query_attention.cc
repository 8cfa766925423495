#include "model/attention/grouped_query_attention.h"

#include "model/config.h"
#include "runtime/ops/linear.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<std::unique_ptr<AttentionVariant>> GroupedQueryAttention::Create(const ModelConfig& c,
                                                                                const std::string& prefix,
                                                                                ParameterSet& params) {
  auto a = std::make_unique<GroupedQueryAttention>();
  const int64_t d = c.d_model(), h = c.n_heads(), hk = AttentionKvHeads(c), dh = HeadDim(c);
  a->dims_ = {h, hk, dh, dh, dh};
  const double std = LinearInitStd(d);
  LRKV_TRY_ASSIGN(a->wq_, params.Add({prefix + "wq", {d, h * dh}, InitKind::kNormal, std}));
  LRKV_TRY_ASSIGN(a->wk_, params.Add({prefix + "wk", {d, hk * dh}, InitKind::kNormal, std}));
  LRKV_TRY_ASSIGN(a->wv_, params.Add({prefix + "wv", {d, hk * dh}, InitKind::kNormal, std}));
  return std::unique_ptr<AttentionVariant>(std::move(a));
}

// Saves nothing: backward needs only x.
absl::Status GroupedQueryAttention::Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v, VariantSaved&) {
  constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;
  LRKV_TRY(LinearForward(x, wq_->value, q, kCat));  // (B, T, H d_h)
  LRKV_TRY(LinearForward(x, wk_->value, k, kCat));  // (B, T, Hk d_h)
  return LinearForward(x, wv_->value, v, kCat);     // (B, T, Hk d_h)
}

absl::Status GroupedQueryAttention::Backward(const Tensor& x, const VariantSaved&, const Tensor& dq, const Tensor& dk,
                                             const Tensor& dv, Tensor& dx) {
  constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;
  LRKV_TRY(LinearBackward(dq, x, wq_->value, &dx, wq_->grad, kCat));
  LRKV_TRY(LinearBackward(dk, x, wk_->value, &dx, wk_->grad, kCat, /*accumulate_dx=*/true));
  return LinearBackward(dv, x, wv_->value, &dx, wv_->grad, kCat, /*accumulate_dx=*/true);
}

}  // namespace lrkv
