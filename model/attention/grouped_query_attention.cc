#include "model/attention/grouped_query_attention.h"

#include "model/attention/variant_registry.h"

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
absl::Status GroupedQueryAttention::Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v,
                                            std::unique_ptr<VariantSaved>& saved) {
  saved.reset();
  constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;
  LRKV_TRY(LinearForward(x, *wq_, q, kCat));  // (B, T, H d_h)
  LRKV_TRY(LinearForward(x, *wk_, k, kCat));  // (B, T, Hk d_h)
  return LinearForward(x, *wv_, v, kCat);     // (B, T, Hk d_h)
}

// Cached: K and V of this rank's KV heads (the decoder stores K rotated, ready for the core).
std::vector<int64_t> GroupedQueryAttention::CacheParts() const {
  return {dims_.kv_heads * dims_.qk_dim, dims_.kv_heads * dims_.v_dim};
}

absl::Status GroupedQueryAttention::Queries(const Tensor& x, Tensor& q) {
  return LinearForward(x, *wq_, q, FlopCategory::kAttentionProjection);
}

absl::Status GroupedQueryAttention::CacheRows(const Tensor& x, std::vector<Tensor>& rows) {
  const std::vector<int64_t> widths = CacheParts();
  rows.clear();
  for (auto [w, width] : {std::pair{wk_, widths[0]}, std::pair{wv_, widths[1]}}) {
    LRKV_TRY_ASSIGN(Tensor r, Tensor::Empty({x.dim(0), x.dim(1), width}, x.dtype(), x.device()));
    LRKV_TRY(LinearForward(x, *w, r, FlopCategory::kAttentionProjection));
    rows.push_back(r);
  }
  return absl::OkStatus();
}

absl::Status GroupedQueryAttention::KeysValues(const std::vector<Tensor>& parts, Tensor& k, Tensor& v) {
  LRKV_TRY_ASSIGN(const Tensor keys, parts[0].View(k.shape()));
  LRKV_TRY_ASSIGN(const Tensor values, parts[1].View(v.shape()));
  LRKV_TRY(k.CopyFrom(keys));
  return v.CopyFrom(values);
}

// Head h's key is its KV head's: KV head (offset + h) / group.
absl::StatusOr<HeadMaps> GroupedQueryAttention::QueryKeyMaps() const {
  const int64_t dh = dims_.qk_dim;
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd wq, ParameterMatrix(*wq_, wq_->value.dim(0)));
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd wk, ParameterMatrix(*wk_, wk_->value.dim(0)));
  const KvGroups& g = dims_.kv_groups;
  const int64_t group = g.group > 0 ? g.group : dims_.heads / dims_.kv_heads;
  HeadMaps m;
  for (int64_t h = 0; h < dims_.heads; ++h) {
    m.wq.push_back(HeadColumns(wq, h, dh));
    m.wk.push_back(HeadColumns(wk, (g.q_head_offset + h) / group, dh));
  }
  return m;
}

absl::Status GroupedQueryAttention::Backward(const Tensor& x, const VariantSaved*, const Tensor& dq, const Tensor& dk,
                                             const Tensor& dv, Tensor& dx) {
  constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;
  LRKV_TRY(LinearBackward(dq, x, wq_->value, &dx, wq_->grad, kCat));
  LRKV_TRY(LinearBackward(dk, x, wk_->value, &dx, wk_->grad, kCat, /*accumulate_dx=*/true));
  return LinearBackward(dv, x, wv_->value, &dx, wv_->grad, kCat, /*accumulate_dx=*/true);
}

}  // namespace lrkv

namespace lrkv {
namespace {

// Hk KV heads of d_h: wq (d, H d_h), wk and wv (d, Hk d_h), wo (H d_h, d); Hk 2 d_h cached.
AttentionCost GroupedCost(const ModelConfig& c, int tp) {
  const int64_t d = c.d_model(), h = c.n_heads(), dh = HeadDim(c), hk = AttentionKvHeads(c);
  AttentionCost a;
  a.matmul_params = d * h * dh + 2 * d * hk * dh + h * dh * d;
  a.qk_dim = a.v_dim = dh;
  a.kv_cache = 2 * hk * dh;
  const bool split_kv = hk % tp == 0;  // otherwise wk, wv are replicated
  a.replicated_matmul_params = split_kv ? 0 : 2 * d * hk * dh;
  a.kv_cache_per_rank = split_kv ? a.kv_cache / tp : a.kv_cache;
  a.core_heads_per_rank = h / tp;
  a.core_kv_heads_per_rank = split_kv ? hk / tp : hk;  // saves nothing of its own: q, k, v are the layer's
  return a;
}

absl::Status EvenHeadForRope(const ModelConfig& c) {
  LRKV_REQUIRE(HeadDim(c) % 2 == 0, "d_head = d_model / n_heads (", HeadDim(c), ") must be even for RoPE");
  return absl::OkStatus();
}

AttentionVariantInfo Grouped(AttentionKind kind, const char* name) {
  AttentionVariantInfo v;
  v.kind = kind, v.name = name, v.own_fields = {"kv_heads"};
  v.cost = GroupedCost;
  v.create = GroupedQueryAttention::Create;
  v.fill_defaults = [](ModelConfig&) {};
  return v;
}

}  // namespace

LRKV_ATTENTION_VARIANTS(grouped_query_attention) {
  AttentionVariantInfo mha = Grouped(MHA, "mha");
  mha.gpt2_small_fields = "attention: MHA";
  mha.fill_defaults = [](ModelConfig& c) {
    if (c.kv_heads() == 0) c.set_kv_heads(c.n_heads());
  };
  mha.kv_heads = [](const ModelConfig& c) { return c.n_heads(); };
  mha.validate = [](const ModelConfig& c) {
    LRKV_REQUIRE(c.kv_heads() == c.n_heads(), "model.kv_heads (", c.kv_heads(),
                 ") must equal model.n_heads for MHA (or be left unset)");
    return EvenHeadForRope(c);
  };
  AttentionVariantInfo gqa = Grouped(GQA, "gqa");
  gqa.gpt2_small_fields = "attention: GQA kv_heads: 4";
  gqa.kv_heads = [](const ModelConfig& c) { return c.kv_heads(); };
  gqa.validate = [](const ModelConfig& c) {
    LRKV_REQUIRE(c.kv_heads() > 0, "model.kv_heads must be set (> 0) for GQA");
    LRKV_REQUIRE(c.n_heads() % c.kv_heads() == 0, "model.kv_heads (", c.kv_heads(), ") does not divide model.n_heads (",
                 c.n_heads(), ")");
    return EvenHeadForRope(c);
  };
  AttentionVariantInfo mqa = Grouped(MQA, "mqa");
  mqa.gpt2_small_fields = "attention: MQA";
  mqa.fill_defaults = [](ModelConfig& c) {
    if (c.kv_heads() == 0) c.set_kv_heads(1);
  };
  mqa.kv_heads = [](const ModelConfig&) { return 1; };
  mqa.validate = [](const ModelConfig& c) {
    LRKV_REQUIRE(c.kv_heads() == 1, "model.kv_heads must be 1 (or unset) for MQA, got ", c.kv_heads());
    return EvenHeadForRope(c);
  };
  return {mha, gqa, mqa};
}

}  // namespace lrkv
