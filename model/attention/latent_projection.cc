#include "model/attention/latent_projection.h"

#include "model/attention/attention_variant.h"
#include "runtime/ops/cast.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;
}  // namespace

absl::StatusOr<LatentProjection> LatentProjection::Create(ParameterSet& params, const std::string& prefix,
                                                          const std::string& down_name, const std::string& norm_name,
                                                          int64_t d, int64_t width, double eps) {
  LatentProjection l;
  l.eps_ = eps;
  LRKV_TRY_ASSIGN(l.down_, params.Add(ReplicatedWeight(prefix + down_name, {d, width}, LinearInitStd(d))));
  // The gain is replicated too: its gradient sums over the rank's heads.
  LRKV_TRY_ASSIGN(l.norm_, params.Add({prefix + norm_name, {width}, InitKind::kOnes, 0, ParamRole::kNorm,
                                       TpSplit::kReplicatedPartialGrad}));
  return l;
}

int64_t LatentProjection::width() const { return down_->value.dim(1); }

absl::StatusOr<Eigen::MatrixXd> LatentProjection::Map() const {
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd down, ParameterMatrix(*down_, down_->value.dim(0)));
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd gain, ParameterMatrix(*norm_, 1));
  return Eigen::MatrixXd(down * gain.row(0).asDiagonal());
}

absl::Status LatentProjection::Forward(const Tensor& x, LatentSaved& saved) const {
  const int64_t n = x.numel() / x.dim(-1);
  LRKV_TRY_ASSIGN(saved.raw, Tensor::Empty({n, width()}, x.dtype(), x.device()));
  LRKV_TRY_ASSIGN(saved.rstd, Tensor::Empty({n}, AccumDType(x.dtype()), x.device()));
  LRKV_TRY_ASSIGN(saved.latent, Tensor::Empty({n, width()}, x.dtype(), x.device()));
  LRKV_TRY(LinearForward(x, *down_, saved.raw, kCat));
  return RmsNormForward(saved.raw, &norm_->value, eps_, saved.latent, saved.rstd);
}

absl::Status LatentProjection::Backward(const Tensor& x, const LatentSaved& saved, const Tensor& dlatent,
                                        Tensor& dx) const {
  LRKV_TRY_ASSIGN(Tensor draw, Tensor::Empty(saved.raw.shape(), x.dtype(), x.device()));
  LRKV_TRY(RmsNormBackward(dlatent, saved.raw, &norm_->value, saved.rstd, draw, &norm_->grad));
  return LinearBackward(draw, x, down_->value, &dx, down_->grad, kCat, /*accumulate_dx=*/true);
}

absl::StatusOr<Tensor> KeyScales(Tensor& k, double eps) {
  LRKV_TRY_ASSIGN(Tensor rstd, Tensor::Empty({k.numel() / k.dim(-1)}, AccumDType(k.dtype()), k.device()));
  LRKV_TRY(RmsNormForward(k, nullptr, eps, k, rstd));
  if (rstd.dtype() == k.dtype()) return rstd;
  LRKV_TRY_ASSIGN(Tensor scales, Tensor::Empty(rstd.shape(), k.dtype(), k.device()));
  LRKV_TRY(Cast(rstd, scales));
  return scales;
}

absl::StatusOr<LatentQuery> LatentQuery::Create(const ModelConfig& c, const std::string& prefix, ParameterSet& params,
                                                int64_t qk_dim, int64_t q_rank, bool whole) {
  LatentQuery q;
  const int64_t d = c.d_model(), h = c.n_heads();
  auto by_head = [&](const std::string& name, int64_t in) {
    return whole ? ReplicatedWeight(prefix + name, {in, h * qk_dim}, LinearInitStd(in))
                 : ColumnParallelWeight(prefix + name, in, h * qk_dim, LinearInitStd(in));
  };
  if (q_rank == 0) {
    LRKV_TRY_ASSIGN(q.wq_, params.Add(by_head("wq", d)));
    return q;
  }
  LRKV_TRY_ASSIGN(q.latent_,
                  LatentProjection::Create(params, prefix, "wq_down", "q_norm.weight", d, q_rank, c.norm_eps()));
  LRKV_TRY_ASSIGN(q.wq_up_, params.Add(by_head("wq_up", q_rank)));
  return q;
}

absl::Status LatentQuery::Forward(const Tensor& x, Tensor& q, LatentSaved& saved) const {
  if (wq_ != nullptr) return LinearForward(x, *wq_, q, kCat);
  LRKV_TRY(latent_.Forward(x, saved));
  return LinearForward(saved.latent, *wq_up_, q, kCat);
}

absl::Status LatentQuery::Backward(const Tensor& x, const LatentSaved& saved, const Tensor& dq, Tensor& dx) const {
  if (wq_ != nullptr) return LinearBackward(dq, x, wq_->value, &dx, wq_->grad, kCat);
  LRKV_TRY_ASSIGN(Tensor dq_latent, Tensor::Empty(saved.latent.shape(), x.dtype(), x.device()));
  LRKV_TRY(LinearBackward(dq, saved.latent, wq_up_->value, &dq_latent, wq_up_->grad, kCat));
  LRKV_TRY(dx.SetZero());
  return latent_.Backward(x, saved, dq_latent, dx);
}

absl::StatusOr<Eigen::MatrixXd> LatentQuery::Map() const {
  if (wq_ != nullptr) return ParameterMatrix(*wq_, wq_->value.dim(0));
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd latent, latent_.Map());
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd up, ParameterMatrix(*wq_up_, wq_up_->value.dim(0)));
  return Eigen::MatrixXd(latent * up);
}

}  // namespace lrkv
