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
  const TpRank tp = params.tp();
  const int64_t local_heads = h / tp.size;
  const bool split_kv = hk % tp.size == 0;
  a->dims_ = {local_heads, split_kv ? hk / tp.size : hk, dh, dh, dh};
  if (!split_kv) a->dims_.kv_groups = {h / hk, tp.index * local_heads};
  a->kv_cache_values_ = 2 * hk * dh;
  const double std = LinearInitStd(d);
  LRKV_TRY_ASSIGN(a->wq_, params.Add(ColumnParallelWeight(prefix + "wq", d, h * dh, std)));
  for (auto [w, name] : {std::pair{&a->wk_, "wk"}, std::pair{&a->wv_, "wv"}}) {
    LRKV_TRY_ASSIGN(*w, params.Add(split_kv ? ColumnParallelWeight(prefix + name, d, hk * dh, std)
                                            : ReplicatedWeight(prefix + name, {d, hk * dh}, std)));
  }
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
