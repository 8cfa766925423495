#include "model/attention/mla_attention.h"

#include "model/config.h"
#include "runtime/ops/head_slice.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;
// Layout of VariantSaved::tensors: the KV latent's {raw, rstd, latent}, then the query latent's.
constexpr int kKvSaved = 0, kQSaved = 3;
}  // namespace

absl::StatusOr<std::unique_ptr<AttentionVariant>> MlaAttention::Create(const ModelConfig& c, const std::string& prefix,
                                                                       ParameterSet& params) {
  auto a = std::make_unique<MlaAttention>();
  const MlaConfig& m = c.mla();
  const int64_t d = c.d_model(), h = c.n_heads(), dn = m.nope_dim(), dr = m.rope_dim(), dv = m.v_dim();
  const int64_t local_heads = h / params.tp().size;
  a->dims_ = {local_heads, local_heads, dn + dr, dv, dr};
  a->kv_rank_ = m.kv_lora_rank();
  a->q_rank_ = m.q_lora_rank();
  a->nope_dim_ = dn;
  a->eps_ = c.norm_eps();
  // A latent's norm gain is replicated too: its gradient sums over the rank's heads.
  auto latent_norm = [&](const std::string& name, int64_t width) {
    return params.Add({prefix + name, {width}, InitKind::kOnes, 0, ParamRole::kNorm, TpSplit::kReplicatedPartialGrad});
  };
  if (a->q_rank_ == 0) {
    LRKV_TRY_ASSIGN(a->wq_, params.Add(ColumnParallelWeight(prefix + "wq", d, h * (dn + dr), LinearInitStd(d))));
  } else {
    LRKV_TRY_ASSIGN(a->q_latent_.down, params.Add(ReplicatedWeight(prefix + "wq_down", {d, a->q_rank_}, LinearInitStd(d))));
    LRKV_TRY_ASSIGN(a->q_latent_.norm, latent_norm("q_norm.weight", a->q_rank_));
    LRKV_TRY_ASSIGN(a->wq_up_, params.Add(ColumnParallelWeight(prefix + "wq_up", a->q_rank_, h * (dn + dr),
                                                               LinearInitStd(a->q_rank_))));
  }
  LRKV_TRY_ASSIGN(a->kv_latent_.down, params.Add(ReplicatedWeight(prefix + "wkv_down", {d, a->kv_rank_}, LinearInitStd(d))));
  LRKV_TRY_ASSIGN(a->kv_latent_.norm, latent_norm("kv_norm.weight", a->kv_rank_));
  LRKV_TRY_ASSIGN(a->wk_up_, params.Add(ColumnParallelWeight(prefix + "wk_up", a->kv_rank_, h * dn,
                                                             LinearInitStd(a->kv_rank_))));
  LRKV_TRY_ASSIGN(a->wv_up_, params.Add(ColumnParallelWeight(prefix + "wv_up", a->kv_rank_, h * dv,
                                                             LinearInitStd(a->kv_rank_))));
  LRKV_TRY_ASSIGN(a->wk_rope_, params.Add(ReplicatedWeight(prefix + "wk_rope", {d, dr}, LinearInitStd(d))));
  return std::unique_ptr<AttentionVariant>(std::move(a));
}

absl::Status MlaAttention::LatentForward(const Latent& l, const Tensor& x, Tensor* saved) {
  const int64_t n = x.numel() / x.dim(-1), width = l.down->value.dim(1);
  LRKV_TRY_ASSIGN(saved[0], Tensor::Empty({n, width}, x.dtype(), x.device()));  // raw x W_down
  LRKV_TRY_ASSIGN(saved[1], Tensor::Empty({n}, x.dtype(), x.device()));         // rstd
  LRKV_TRY_ASSIGN(saved[2], Tensor::Empty({n, width}, x.dtype(), x.device()));  // normalised latent
  LRKV_TRY(LinearForward(x, l.down->value, saved[0], kCat));
  return RmsNormForward(saved[0], &l.norm->value, eps_, saved[2], saved[1]);
}

absl::Status MlaAttention::LatentBackward(const Latent& l, const Tensor& x, const Tensor* saved, const Tensor& dlatent,
                                          Tensor& dx) {
  LRKV_TRY_ASSIGN(Tensor draw, Tensor::Empty(saved[0].shape(), x.dtype(), x.device()));
  LRKV_TRY(RmsNormBackward(dlatent, saved[0], &l.norm->value, saved[1], draw, &l.norm->grad));
  return LinearBackward(draw, x, l.down->value, &dx, l.down->grad, kCat, /*accumulate_dx=*/true);
}

absl::Status MlaAttention::Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v, VariantSaved& saved) {
  const int64_t n = x.numel() / x.dim(-1), h = dims_.heads, dr = dims_.rope_dims;
  saved.tensors.resize(q_rank_ == 0 ? 3 : 6);
  // Queries: (B, T, H, d_n + d_R), per head [nope; rope].
  if (q_rank_ == 0) {
    LRKV_TRY(LinearForward(x, wq_->value, q, kCat));
  } else {
    LRKV_TRY(LatentForward(q_latent_, x, &saved.tensors[kQSaved]));
    LRKV_TRY(LinearForward(saved.tensors[kQSaved + 2], wq_up_->value, q, kCat));
  }
  // Keys: per head [c W_UK_h; RoPE key shared by the heads]; values: c W_UV.
  LRKV_TRY(LatentForward(kv_latent_, x, &saved.tensors[kKvSaved]));
  const Tensor& latent = saved.tensors[kKvSaved + 2];
  LRKV_TRY_ASSIGN(Tensor k_nope, Tensor::Empty({n, h, nope_dim_}, x.dtype(), x.device()));
  LRKV_TRY(LinearForward(latent, wk_up_->value, k_nope, kCat));
  LRKV_TRY_ASSIGN(Tensor k_rope, Tensor::Empty({n, 1, dr}, x.dtype(), x.device()));
  LRKV_TRY(LinearForward(x, wk_rope_->value, k_rope, kCat));
  LRKV_TRY_ASSIGN(Tensor heads, k.View({n, h, dims_.qk_dim}));
  LRKV_TRY(CopyToHeadSlice(k_nope, 0, heads));
  LRKV_TRY(CopyToHeadSlice(k_rope, nope_dim_, heads));
  return LinearForward(latent, wv_up_->value, v, kCat);
}

absl::Status MlaAttention::Backward(const Tensor& x, const VariantSaved& saved, const Tensor& dq, const Tensor& dk,
                                    const Tensor& dv, Tensor& dx) {
  const int64_t n = x.numel() / x.dim(-1), h = dims_.heads, dr = dims_.rope_dims;
  // Query path writes dx first; every later path accumulates into it.
  if (q_rank_ == 0) {
    LRKV_TRY(LinearBackward(dq, x, wq_->value, &dx, wq_->grad, kCat));
  } else {
    const Tensor* qs = &saved.tensors[kQSaved];
    LRKV_TRY_ASSIGN(Tensor dq_latent, Tensor::Empty(qs[2].shape(), x.dtype(), x.device()));
    LRKV_TRY(LinearBackward(dq, qs[2], wq_up_->value, &dq_latent, wq_up_->grad, kCat));
    LRKV_TRY(dx.SetZero());
    LRKV_TRY(LatentBackward(q_latent_, x, qs, dq_latent, dx));
  }
  LRKV_TRY_ASSIGN(Tensor dheads, dk.View({n, h, dims_.qk_dim}));
  LRKV_TRY_ASSIGN(Tensor dk_rope, Tensor::Empty({n, 1, dr}, x.dtype(), x.device()));
  LRKV_TRY(ReduceFromHeadSlice(dheads, nope_dim_, dk_rope));
  LRKV_TRY(LinearBackward(dk_rope, x, wk_rope_->value, &dx, wk_rope_->grad, kCat, /*accumulate_dx=*/true));
  LRKV_TRY_ASSIGN(Tensor dk_nope, Tensor::Empty({n, h, nope_dim_}, x.dtype(), x.device()));
  LRKV_TRY(ReduceFromHeadSlice(dheads, 0, dk_nope));
  const Tensor* kvs = &saved.tensors[kKvSaved];
  LRKV_TRY_ASSIGN(Tensor dlatent, Tensor::Empty(kvs[2].shape(), x.dtype(), x.device()));
  LRKV_TRY(LinearBackward(dk_nope, kvs[2], wk_up_->value, &dlatent, wk_up_->grad, kCat));
  LRKV_TRY(LinearBackward(dv, kvs[2], wv_up_->value, &dlatent, wv_up_->grad, kCat, /*accumulate_dx=*/true));
  return LatentBackward(kv_latent_, x, kvs, dlatent, dx);
}

}  // namespace lrkv
