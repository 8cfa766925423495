#include "model/attention/mla_attention.h"

#include <algorithm>

#include "model/attention/variant_registry.h"

#include "model/config.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/gemm.h"
#include "runtime/ops/head_slice.h"
#include "runtime/ops/latent_decode_attention.h"
#include "runtime/ops/linear.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;
}  // namespace

absl::StatusOr<std::unique_ptr<AttentionVariant>> MlaAttention::Create(const ModelConfig& c, const std::string& prefix,
                                                                       ParameterSet& params) {
  auto a = std::make_unique<MlaAttention>();
  const MlaConfig& m = c.mla();
  const int64_t d = c.d_model(), h = c.n_heads(), dn = m.nope_dim(), dr = m.rope_dim(), dv = m.v_dim();
  const int64_t local_heads = h / params.tp().size;
  a->dims_ = {local_heads, local_heads, dn + dr, dv, dr};
  a->kv_rank_ = m.kv_lora_rank();
  a->nope_dim_ = dn;
  a->qk_norm_ = c.qk_norm();
  a->norm_eps_ = c.norm_eps();
  LRKV_TRY_ASSIGN(a->query_, LatentQuery::Create(c, prefix, params, dn + dr, m.q_lora_rank()));
  LRKV_TRY_ASSIGN(a->kv_latent_, LatentProjection::Create(params, prefix, "wkv_down", "kv_norm.weight", d,
                                                          a->kv_rank_, c.norm_eps()));
  LRKV_TRY_ASSIGN(a->wk_up_, params.Add(ColumnParallelWeight(prefix + "wk_up", a->kv_rank_, h * dn,
                                                             LinearInitStd(a->kv_rank_))));
  LRKV_TRY_ASSIGN(a->wv_up_, params.Add(ColumnParallelWeight(prefix + "wv_up", a->kv_rank_, h * dv,
                                                             LinearInitStd(a->kv_rank_))));
  LRKV_TRY_ASSIGN(a->wk_rope_, params.Add(ReplicatedWeight(prefix + "wk_rope", {d, dr}, LinearInitStd(d))));
  return std::unique_ptr<AttentionVariant>(std::move(a));
}

absl::Status MlaAttention::Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v,
                                   std::unique_ptr<VariantSaved>& saved) {
  const int64_t n = x.numel() / x.dim(-1), dr = dims_.rope_dims;
  auto s = std::make_unique<MlaSaved>();
  // Queries: (B, T, H, d_n + d_R), per head [nope; rope].
  LRKV_TRY(query_.Forward(x, q, s->q));
  LRKV_TRY(kv_latent_.Forward(x, s->kv));
  LRKV_TRY_ASSIGN(Tensor k_rope, Tensor::Empty({n, 1, dr}, x.dtype(), x.device()));
  LRKV_TRY(LinearForward(x, *wk_rope_, k_rope, kCat));
  LRKV_TRY(KeysValuesOf(s->kv.latent, k_rope, k, v));
  saved = std::move(s);
  return absl::OkStatus();
}

// Keys: per head [c W_UK_h; the RoPE key shared by the heads].
//   latent (N, c), k_rope (N, 1, d_R) -> k (N, H, d_n + d_R)
absl::Status MlaAttention::KeysOf(const Tensor& latent, const Tensor& k_rope, Tensor& k) {
  const int64_t n = latent.numel() / kv_rank_, h = dims_.heads;
  LRKV_TRY_ASSIGN(Tensor k_nope, Tensor::Empty({n, h, nope_dim_}, latent.dtype(), latent.device()));
  LRKV_TRY(LinearForward(latent, *wk_up_, k_nope, kCat));
  LRKV_TRY_ASSIGN(Tensor heads, k.View({n, h, dims_.qk_dim}));
  LRKV_TRY_ASSIGN(const Tensor rope_row, k_rope.View({n, 1, dims_.rope_dims}));
  LRKV_TRY(CopyToHeadSlice(k_nope, 0, heads));
  return CopyToHeadSlice(rope_row, nope_dim_, heads);
}

// Keys as KeysOf; values c W_UV (N, H, d_v).
absl::Status MlaAttention::KeysValuesOf(const Tensor& latent, const Tensor& k_rope, Tensor& k, Tensor& v) {
  LRKV_TRY(KeysOf(latent, k_rope, k));
  return LinearForward(latent, *wv_up_, v, kCat);
}

// Cached: the normed latent, whole on every rank; under QK-norm the rank's heads' key scales; the
// RoPE key, last, rotated at its position by the layer (AbsorbsDecoding). Decoding reads them in
// place.
std::vector<int64_t> MlaAttention::CacheParts() const {
  if (qk_norm_) return {kv_rank_, dims_.heads, dims_.rope_dims};
  return {kv_rank_, dims_.rope_dims};
}

int64_t MlaAttention::KvCacheValuesPerToken() const {
  return kv_rank_ + (qk_norm_ ? dims_.heads : 0) + dims_.rope_dims;
}

absl::Status MlaAttention::Queries(const Tensor& x, Tensor& q) {
  LatentSaved unused;
  return query_.Forward(x, q, unused);
}

absl::Status MlaAttention::CacheRows(const Tensor& x, std::vector<Tensor>& rows) {
  const int64_t n = x.numel() / x.dim(-1), dr = dims_.rope_dims;
  LatentSaved kv;
  LRKV_TRY(kv_latent_.Forward(x, kv));
  LRKV_TRY_ASSIGN(Tensor k_rope, Tensor::Empty({n, 1, dr}, x.dtype(), x.device()));
  LRKV_TRY(LinearForward(x, *wk_rope_, k_rope, kCat));
  LRKV_TRY_ASSIGN(const Tensor latent, kv.latent.View({x.dim(0), x.dim(1), kv_rank_}));
  rows = {latent};
  if (qk_norm_) {  // each head's key, (N, H, d_n + d_R), only for its 1 / rms
    LRKV_TRY_ASSIGN(Tensor k, Tensor::Empty({n, dims_.heads, dims_.qk_dim}, x.dtype(), x.device()));
    LRKV_TRY(KeysOf(kv.latent, k_rope, k));
    LRKV_TRY_ASSIGN(Tensor scales, KeyScales(k, norm_eps_));
    LRKV_TRY_ASSIGN(scales, scales.View({x.dim(0), x.dim(1), dims_.heads}));
    rows.push_back(scales);
  }
  LRKV_TRY_ASSIGN(k_rope, k_rope.View({x.dim(0), x.dim(1), dr}));
  rows.push_back(k_rope);
  return absl::OkStatus();
}

// The latent and the (rotated) RoPE key from their parts, then as Forward.
absl::Status MlaAttention::KeysValues(const std::vector<Tensor>& parts, Tensor& k, Tensor& v) {
  const int64_t n = parts[0].numel() / kv_rank_;
  LRKV_TRY_ASSIGN(const Tensor latent, parts[0].View({n, kv_rank_}));
  LRKV_TRY_ASSIGN(const Tensor k_rope, parts.back().View({n, 1, dims_.rope_dims}));
  return KeysValuesOf(latent, k_rope, k, v);
}

// q_abs[t, h] = [q[t, h, :d_n] W_UK,h^T ; q[t, h, d_n:]]: one GEMM batched over the heads, then the
// RoPE part copied.
absl::Status MlaAttention::AbsorbQueries(const Tensor& q, Tensor& q_abs) {
  const int64_t h = dims_.heads, dq = dims_.qk_dim, dn = nope_dim_, dr = dims_.rope_dims, c = kv_rank_;
  const int64_t n = q.numel() / (h * dq), wa = c + dr;
  GemmArgs g;
  g.m = n, g.n = c, g.k = dn, g.trans_b = true;
  g.lda = h * dq, g.ldb = h * dn, g.ldc = h * wa;
  g.batch = h, g.stride_a = dq, g.stride_b = dn, g.stride_c = wa;
  LRKV_TRY(Gemm(q, wk_up_->value, q_abs, g, kCat));
  LRKV_TRY_ASSIGN(const Tensor heads, q.View({n, h, dq}));
  LRKV_TRY_ASSIGN(Tensor rope, Tensor::Empty({n, h, dr}, q.dtype(), q.device()));
  LRKV_TRY(ReduceFromHeadSlice(heads, dn, rope));  // one source head per head: a copy
  LRKV_TRY_ASSIGN(Tensor out, q_abs.View({n, h, wa}));
  return CopyToHeadSlice(rope, c, out);
}

// o[t, h] = o_abs[t, h] W_UV,h: one GEMM batched over the heads.
absl::Status MlaAttention::ExpandOutputs(const Tensor& o_abs, Tensor& o) {
  const int64_t h = dims_.heads, dv = dims_.v_dim, c = kv_rank_;
  GemmArgs g;
  g.m = o_abs.numel() / (h * c), g.n = dv, g.k = c;
  g.lda = h * c, g.ldb = h * dv, g.ldc = h * dv;
  g.batch = h, g.stride_a = c, g.stride_b = dv, g.stride_c = dv;
  return Gemm(o_abs, wv_up_->value, o, g, kCat);
}

// One KV head of width c + d_R: the cached rows are the keys and, their latents, the values;
// under QK-norm each score is scaled by its key's cached 1 / rms.
absl::Status MlaAttention::DecodeAbsorbed(const Tensor& q, const std::vector<Tensor>& past, double scale, Tensor& o) {
  const int64_t len = past[0].dim(1), h = dims_.heads, width = kv_rank_ + dims_.rope_dims;
  LRKV_TRY_ASSIGN(const Tensor latent, past[0].View({len, kv_rank_}));
  LRKV_TRY_ASSIGN(const Tensor rope, past.back().View({len, dims_.rope_dims}));
  Tensor scales;  // (len, H) under QK-norm
  if (qk_norm_) {
    LRKV_TRY_ASSIGN(scales, past[1].View({len, h}));
  }
  LRKV_TRY_ASSIGN(Tensor q_abs, Tensor::Empty({1, 1, h, width}, q.dtype(), q.device()));
  LRKV_TRY_ASSIGN(Tensor o_abs, Tensor::Empty({1, 1, h, kv_rank_}, q.dtype(), q.device()));
  LRKV_TRY_ASSIGN(Tensor lse, Tensor::Empty({1, h, 1}, AccumDType(q.dtype()), q.device()));
  LRKV_TRY(AbsorbQueries(q, q_abs));
  LRKV_TRY(LatentDecodeAttention(q_abs, {latent}, rope, qk_norm_ ? &scales : nullptr, {0}, scale, o_abs, lse));
  return ExpandOutputs(o_abs, o);
}

// k_h = [latent(x) W_UK,h ; x W_KR]: the key map is [W_down diag(gain) W_UK,h, W_KR].
absl::StatusOr<HeadMaps> MlaAttention::QueryKeyMaps() const {
  const int64_t dn = nope_dim_, dr = dims_.rope_dims;
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd wq, query_.Map());
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd latent, kv_latent_.Map());
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd up, ParameterMatrix(*wk_up_, kv_rank_));
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd rope, ParameterMatrix(*wk_rope_, wk_rope_->value.dim(0)));
  HeadMaps m;
  for (int64_t h = 0; h < dims_.heads; ++h) {
    m.wq.push_back(HeadColumns(wq, h, dn + dr));
    Eigen::MatrixXd k(latent.rows(), dn + dr);
    k << latent * HeadColumns(up, h, dn), rope;
    m.wk.push_back(std::move(k));
  }
  return m;
}

absl::Status MlaAttention::Backward(const Tensor& x, const VariantSaved* saved, const Tensor& dq, const Tensor& dk,
                                    const Tensor& dv, Tensor& dx) {
  const auto& s = static_cast<const MlaSaved&>(*saved);
  const int64_t n = x.numel() / x.dim(-1), h = dims_.heads, dr = dims_.rope_dims;
  // Query path writes dx first; every later path accumulates into it.
  LRKV_TRY(query_.Backward(x, s.q, dq, dx));
  LRKV_TRY_ASSIGN(Tensor dheads, dk.View({n, h, dims_.qk_dim}));
  LRKV_TRY_ASSIGN(Tensor dk_rope, Tensor::Empty({n, 1, dr}, x.dtype(), x.device()));
  LRKV_TRY(ReduceFromHeadSlice(dheads, nope_dim_, dk_rope));
  LRKV_TRY(LinearBackward(dk_rope, x, wk_rope_->value, &dx, wk_rope_->grad, kCat, /*accumulate_dx=*/true));
  LRKV_TRY_ASSIGN(Tensor dk_nope, Tensor::Empty({n, h, nope_dim_}, x.dtype(), x.device()));
  LRKV_TRY(ReduceFromHeadSlice(dheads, 0, dk_nope));
  LRKV_TRY_ASSIGN(Tensor dlatent, Tensor::Empty(s.kv.latent.shape(), x.dtype(), x.device()));
  LRKV_TRY(LinearBackward(dk_nope, s.kv.latent, wk_up_->value, &dlatent, wk_up_->grad, kCat));
  LRKV_TRY(LinearBackward(dv, s.kv.latent, wv_up_->value, &dlatent, wv_up_->grad, kCat, /*accumulate_dx=*/true));
  return kv_latent_.Backward(x, s.kv, dlatent, dx);
}

}  // namespace lrkv

namespace lrkv {

// The query (one W_Q, or down + norm + up with q_lora_rank), the KV down-projection to the latent
// c (kv_lora_rank) with its norm, per-head up-projections to NoPE keys and values, one RoPE key
// shared by the heads. Cached: the latent and the RoPE key, c + d_R, whole on every TP rank; under
// QK-norm also each of the rank's heads' key scales.
LRKV_ATTENTION_VARIANTS(mla_attention) {
  AttentionVariantInfo v;
  v.kind = MLA, v.name = "mla", v.own_fields = {"mla"};
  v.gpt2_small_fields = "attention: MLA mla { kv_lora_rank: 256 rope_dim: 32 q_lora_rank: 0 }";
  v.fill_defaults = [](ModelConfig& c) {
    if (c.mla().nope_dim() == 0) c.mutable_mla()->set_nope_dim(c.d_model() / c.n_heads());
    if (c.mla().v_dim() == 0) c.mutable_mla()->set_v_dim(c.d_model() / c.n_heads());
  };
  v.validate = [](const ModelConfig& c) {
    const MlaConfig& a = c.mla();
    LRKV_REQUIRE(a.kv_lora_rank() > 0, "model.mla.kv_lora_rank must be set (> 0) for MLA");
    LRKV_REQUIRE(a.rope_dim() > 0 && a.rope_dim() % 2 == 0,
                 "model.mla.rope_dim must be set, positive and even for MLA, got ", a.rope_dim());
    LRKV_REQUIRE(a.nope_dim() > 0 && a.v_dim() > 0, "model.mla.nope_dim and model.mla.v_dim must be positive");
    return absl::OkStatus();
  };
  v.kv_heads = [](const ModelConfig& c) { return c.n_heads(); };
  v.cost = [](const ModelConfig& c, int tp) {
    const MlaConfig& m = c.mla();
    const int64_t d = c.d_model(), h = c.n_heads();
    const int64_t dn = m.nope_dim(), dr = m.rope_dim(), dv = m.v_dim(), kv = m.kv_lora_rank(), q = m.q_lora_rank();
    AttentionCost a;
    const int64_t query = q == 0 ? d * h * (dn + dr) : d * q + q * h * (dn + dr);
    a.matmul_params = query + d * kv + kv * h * dn + kv * h * dv + d * dr + h * dv * d;
    a.norm_params = kv + q;
    a.qk_dim = dn + dr;
    a.v_dim = dv;
    // The latent and the RoPE key; under QK-norm each head's key scale (attention_variant.h).
    a.kv_cache = kv + dr + (c.qk_norm() ? h : 0);
    a.replicated_matmul_params = (q == 0 ? 0 : d * q) + d * kv + d * dr;  // down-projections, RoPE key
    a.kv_cache_per_rank = kv + dr + (c.qk_norm() ? h / tp : 0);  // the latent serves every head
    a.core_heads_per_rank = a.core_kv_heads_per_rank = h / tp;
    // Each latent (KV, and the query's when compressed): before and after its norm, and the rstd.
    a.saved_per_token = 2 * kv + 1 + (q == 0 ? 0 : 2 * q + 1);
    a.saved_stats_per_token = 1 + (q == 0 ? 0 : 1);
    // The RoPE key's and NoPE keys' gradients, the latent's before and after its norm.
    a.backward_per_token = std::max(dr + h / tp * dn + 2 * kv, 2 * q);
    return a;
  };
  v.create = MlaAttention::Create;
  return {v};
}

}  // namespace lrkv
