#include "model/attention/lrkv_attention.h"

#include "model/attention/variant_registry.h"

#include <cmath>

#include "model/config.h"
#include "runtime/ops/factored_decode_attention.h"
#include "runtime/ops/gemm.h"
#include "runtime/ops/head_slice.h"
#include "runtime/ops/linear.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;

// The per-head residual GEMM: for every head h, C[:, h, :] (+)= A[:, h, :] op(B[h]). A and C are
// (N, H, width) row blocks of one matrix; B is (H, rows_b, cols_b).
GemmArgs PerHeadGemm(int64_t n, int64_t h, int64_t rows_b, int64_t cols_b, bool trans_b, int64_t a_width,
                     int64_t c_width, double beta) {
  GemmArgs g;
  g.m = n;
  g.k = trans_b ? cols_b : rows_b;
  g.n = trans_b ? rows_b : cols_b;
  g.trans_b = trans_b;
  g.lda = h * a_width, g.ldb = cols_b, g.ldc = h * c_width;
  g.batch = h, g.stride_a = a_width, g.stride_b = rows_b * cols_b, g.stride_c = c_width;
  g.beta = beta;
  return g;
}

}  // namespace

double LrkvAttention::FactorInitStd(int64_t d_model, int64_t rank) {
  return rank == 0 ? 0.0 : std::pow(0.01 / (double(d_model) * rank), 0.25);
}

absl::StatusOr<std::unique_ptr<AttentionVariant>> LrkvAttention::Create(const ModelConfig& c, const std::string& prefix,
                                                                        ParameterSet& params) {
  auto a = std::make_unique<LrkvAttention>();
  const int64_t d = c.d_model(), h = c.n_heads(), dh = HeadDim(c), r = c.lrkv_rank();
  const int64_t local_heads = h / params.tp().size;
  a->dims_ = {local_heads, local_heads, dh, dh, dh};
  a->rank_ = r;
  a->kv_cache_values_ = 2 * (dh + h * r);
  const double std = LinearInitStd(d), factor_std = FactorInitStd(d, r);
  LRKV_TRY_ASSIGN(a->wq_, params.Add(ColumnParallelWeight(prefix + "wq", d, h * dh, std)));
  for (auto [f, kv] : {std::pair{&a->k_, "k"}, std::pair{&a->v_, "v"}}) {
    LRKV_TRY_ASSIGN(f->shared, params.Add(ReplicatedWeight(prefix + "w" + kv + "_shared", {d, dh}, std)));
    LRKV_TRY_ASSIGN(f->u, params.Add(ColumnParallelWeight(prefix + "u" + kv, d, h * r, factor_std)));
    LRKV_TRY_ASSIGN(f->b, params.Add({prefix + "b" + kv, {h, dh, r}, InitKind::kNormal, factor_std, ParamRole::kWeight,
                                      TpSplit::kSplit, 0}));
  }
  return std::unique_ptr<AttentionVariant>(std::move(a));
}

// What decoding caches of one factored projection: shared (N, 1, d_h) = x W_shared, latent (N, H r) = x U.
absl::Status LrkvAttention::FactoredRows(const Factored& f, const Tensor& x, Tensor& shared, Tensor& latent) {
  LRKV_TRY(LinearForward(x, *f.shared, shared, kCat));
  return LinearForward(x, *f.u, latent, kCat);
}

// out (N, H, d_h) = broadcast(shared (N, 1, d_h)) + per head latent_h B_h^T, latent (N, H r).
absl::Status LrkvAttention::Expand(const Factored& f, const Tensor& shared, const Tensor& latent, Tensor& out) {
  const int64_t h = dims_.heads, dh = dims_.qk_dim, r = rank_, n = shared.numel() / dh;
  LRKV_TRY_ASSIGN(const Tensor shared_row, shared.View({n, 1, dh}));
  LRKV_TRY_ASSIGN(Tensor heads, out.View({n, h, dh}));
  LRKV_TRY(CopyToHeadSlice(shared_row, 0, heads));
  return Gemm(latent, f.b->value, heads, PerHeadGemm(n, h, dh, r, /*trans_b=*/true, r, dh, /*beta=*/1.0), kCat);
}

// out (B, T, H, d_h) = broadcast(x W_shared) + per head (x U_h) B_h^T; latent (N, H r) = x U is saved.
absl::Status LrkvAttention::ForwardFactored(const Factored& f, const Tensor& x, Tensor& out, Tensor& latent) {
  const int64_t n = x.numel() / x.dim(-1), dh = dims_.qk_dim;
  LRKV_TRY_ASSIGN(Tensor shared, Tensor::Empty({n, 1, dh}, x.dtype(), x.device()));
  LRKV_TRY(FactoredRows(f, x, shared, latent));
  return Expand(f, shared, latent, out);
}

absl::Status LrkvAttention::BackwardFactored(const Factored& f, const Tensor& x, const Tensor& latent,
                                             const Tensor& dout, Tensor& dx) {
  const int64_t n = x.numel() / x.dim(-1), h = dims_.heads, dh = dims_.qk_dim, r = rank_;
  LRKV_TRY_ASSIGN(Tensor dheads, dout.View({n, h, dh}));
  // Shared path: dK_shared = sum over heads of dK_h.
  LRKV_TRY_ASSIGN(Tensor dshared, Tensor::Empty({n, 1, dh}, x.dtype(), x.device()));
  LRKV_TRY(ReduceFromHeadSlice(dheads, 0, dshared));
  LRKV_TRY(LinearBackward(dshared, x, f.shared->value, &dx, f.shared->grad, kCat, /*accumulate_dx=*/true));
  // Residual path: d(latent_h) = dK_h B_h;  dB_h += dK_h^T latent_h;  then through x U.
  LRKV_TRY_ASSIGN(Tensor dlatent, Tensor::Empty({n, h * r}, x.dtype(), x.device()));
  LRKV_TRY(Gemm(dout, f.b->value, dlatent, PerHeadGemm(n, h, dh, r, /*trans_b=*/false, dh, r, 0.0), kCat));
  GemmArgs g;  // per head: (d_h, r) += dK_h^T (d_h x N) @ latent_h (N x r)
  g.trans_a = true, g.m = dh, g.n = r, g.k = n;
  g.lda = h * dh, g.ldb = h * r, g.ldc = r;
  g.batch = h, g.stride_a = dh, g.stride_b = r, g.stride_c = dh * r;
  g.beta = 1.0;
  LRKV_TRY(Gemm(dout, latent, f.b->grad, g, kCat));
  return LinearBackward(dlatent, x, f.u->value, &dx, f.u->grad, kCat, /*accumulate_dx=*/true);
}

absl::Status LrkvAttention::Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v,
                                    std::unique_ptr<VariantSaved>& saved) {
  const int64_t n = x.numel() / x.dim(-1), h = dims_.heads;
  LRKV_TRY(LinearForward(x, *wq_, q, kCat));
  auto s = std::make_unique<LrkvSaved>();
  LRKV_TRY_ASSIGN(s->k_latent, Tensor::Empty({n, h * rank_}, x.dtype(), x.device()));
  LRKV_TRY_ASSIGN(s->v_latent, Tensor::Empty({n, h * rank_}, x.dtype(), x.device()));
  LRKV_TRY(ForwardFactored(k_, x, k, s->k_latent));
  LRKV_TRY(ForwardFactored(v_, x, v, s->v_latent));
  saved = std::move(s);
  return absl::OkStatus();
}

// Cached: K_shared, V_shared (d_h each) and this rank's heads' latents x U_h for K and V (H r each).
std::vector<int64_t> LrkvAttention::CacheParts() const {
  const int64_t dh = dims_.qk_dim, hr = dims_.heads * rank_;
  return {dh, dh, hr, hr};
}

absl::Status LrkvAttention::Queries(const Tensor& x, Tensor& q) { return LinearForward(x, *wq_, q, kCat); }

absl::Status LrkvAttention::CacheRows(const Tensor& x, std::vector<Tensor>& rows) {
  rows.clear();
  for (int64_t width : CacheParts()) {
    LRKV_TRY_ASSIGN(Tensor r, Tensor::Empty({x.dim(0), x.dim(1), width}, x.dtype(), x.device()));
    rows.push_back(r);
  }
  LRKV_TRY(FactoredRows(k_, x, rows[0], rows[2]));
  return FactoredRows(v_, x, rows[1], rows[3]);
}

// Keys and values rebuilt from the cache, for every cached position.
// Keys rebuilt (QK-norm and RoPE act on each K_h); values as [V_shared; c_h] per head:
// sum_t p_t V_h[t] = sum_t p_t V_shared[t] + (sum_t p_t c_h[t]) B_h^T, so the core's average of the
// wide values, then one (1 x r)(r x d_h) product per head (FinishDecodeValues), is the output,
// without the 2 S H r d_h FLOPs of rebuilding every V_h.
absl::Status LrkvAttention::KeysValues(const std::vector<Tensor>& parts, Tensor& k, Tensor& v) {
  LRKV_TRY(Expand(k_, parts[0], parts[2], k));
  const int64_t h = dims_.heads, dh = dims_.v_dim, r = rank_, n = parts[1].numel() / dh;
  LRKV_TRY_ASSIGN(Tensor wide, v.View({n, h, dh + r}));
  LRKV_TRY_ASSIGN(const Tensor shared, parts[1].View({n, 1, dh}));
  LRKV_TRY(CopyToHeadSlice(shared, 0, wide));
  if (r == 0) return absl::OkStatus();
  LRKV_TRY_ASSIGN(const Tensor latent, parts[3].View({n, h, r}));
  return CopyToHeadSlice(latent, dh, wide);
}

// One new token over the cache parts [K_shared, V_shared, K latents, V latents], its keys rebuilt
// chunk by chunk inside the kernel.
absl::Status LrkvAttention::DecodeFactored(const Tensor& q, const std::vector<Tensor>& past, const KeyTransform& keys,
                                           double scale, Tensor& o_wide, Tensor& lse) {
  std::vector<Tensor> rows;  // (len, width) per part
  for (const Tensor& part : past) {
    LRKV_TRY_ASSIGN(Tensor r, part.View({part.dim(1), part.dim(2)}));
    rows.push_back(r);
  }
  return FactoredDecodeAttention(q, rows[0], rows[2], k_.b->value, rows[1], rows[3], keys, scale, o_wide, lse);
}

// o (n, H, d_h) = o_wide[..., :d_h] + per head o_wide[..., d_h:] B_h^T.
absl::Status LrkvAttention::FinishDecodeValues(const Tensor& o_wide, Tensor& o) {
  const int64_t h = dims_.heads, dh = dims_.v_dim, r = rank_, n = o.numel() / (h * dh);
  LRKV_TRY_ASSIGN(const Tensor wide, o_wide.View({n, h, dh + r}));
  LRKV_TRY_ASSIGN(Tensor out, o.View({n, h, dh}));
  LRKV_TRY(ReduceFromHeadSlice(wide, 0, out));  // one head per head: a copy of the shared part
  if (r == 0) return absl::OkStatus();
  LRKV_TRY_ASSIGN(const Tensor flat, o_wide.View({o_wide.numel()}));
  LRKV_TRY_ASSIGN(const Tensor latent, flat.Slice(dh, flat.numel()));  // (n, H, r) at stride d_h + r
  return Gemm(latent, v_.b->value, out, PerHeadGemm(n, h, dh, r, /*trans_b=*/true, dh + r, dh, /*beta=*/1.0), kCat);
}

// K_h = W_shared + U_h B_h^T.
absl::StatusOr<HeadMaps> LrkvAttention::QueryKeyMaps() const {
  const int64_t dh = dims_.qk_dim, r = rank_;
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd wq, ParameterMatrix(*wq_, wq_->value.dim(0)));
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd shared, ParameterMatrix(*k_.shared, k_.shared->value.dim(0)));
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd u, ParameterMatrix(*k_.u, k_.u->value.dim(0)));
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd b, ParameterMatrix(*k_.b, dims_.heads * dh));  // (H d_h, r)
  HeadMaps m;
  for (int64_t h = 0; h < dims_.heads; ++h) {
    m.wq.push_back(HeadColumns(wq, h, dh));
    m.wk.push_back(r == 0 ? shared : Eigen::MatrixXd(shared + HeadColumns(u, h, r) * b.middleRows(h * dh, dh).transpose()));
  }
  return m;
}

absl::Status LrkvAttention::Backward(const Tensor& x, const VariantSaved* saved, const Tensor& dq, const Tensor& dk,
                                     const Tensor& dv, Tensor& dx) {
  const auto& s = static_cast<const LrkvSaved&>(*saved);
  LRKV_TRY(LinearBackward(dq, x, wq_->value, &dx, wq_->grad, kCat));
  LRKV_TRY(BackwardFactored(k_, x, s.k_latent, dk, dx));
  return BackwardFactored(v_, x, s.v_latent, dv, dx);
}

}  // namespace lrkv

namespace lrkv {

// wq (d, H d_h); wk_shared, wv_shared (d, d_h); uk, uv (d, H r); bk, bv (H, d_h, r); wo (H d_h, d).
// Cached: K_shared and V_shared once, and the per-head latents x U_h for K and V: 2 (d_h + H r).
LRKV_ATTENTION_VARIANTS(lrkv_attention) {
  AttentionVariantInfo v;
  v.kind = LRKV, v.name = "lrkv", v.own_fields = {"lrkv_rank"};
  v.gpt2_small_fields = "attention: LRKV lrkv_rank: 24";  // 24 / 64 = 0.375 of d_head
  v.fill_defaults = [](ModelConfig&) {};
  v.validate = [](const ModelConfig& c) {
    const int32_t dh = HeadDim(c);
    LRKV_REQUIRE(c.lrkv_rank() >= 0 && c.lrkv_rank() <= dh, "model.lrkv_rank (", c.lrkv_rank(),
                 ") must be in [0, d_head = ", dh, "]");
    LRKV_REQUIRE(dh % 2 == 0, "d_head = d_model / n_heads (", dh, ") must be even for RoPE");
    return absl::OkStatus();
  };
  v.kv_heads = [](const ModelConfig& c) { return c.n_heads(); };  // materialised per head
  v.cost = [](const ModelConfig& c, int tp) {
    const int64_t d = c.d_model(), h = c.n_heads(), dh = HeadDim(c), r = c.lrkv_rank();
    AttentionCost a;
    a.matmul_params = d * h * dh + 2 * d * dh + 2 * d * h * r + 2 * h * dh * r + h * dh * d;
    a.qk_dim = a.v_dim = dh;
    a.kv_cache = 2 * (dh + h * r);
    a.replicated_matmul_params = 2 * d * dh;  // wk_shared, wv_shared
    a.kv_cache_per_rank = 2 * (dh + h / tp * r);
    a.core_heads_per_rank = a.core_kv_heads_per_rank = h / tp;
    a.saved_per_token = 2 * (h / tp) * r;       // the K and V latents
    a.backward_per_token = dh + (h / tp) * r;  // dK_shared (or dV_shared) and its latent's gradient
    return a;
  };
  v.create = LrkvAttention::Create;
  return {v};
}

}  // namespace lrkv
