#include "model/norm_layer.h"

#include "runtime/ops/layernorm.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<NormLayer> NormLayer::Create(const ModelConfig& c, const std::string& prefix, ParameterSet& params) {
  NormLayer n;
  n.layernorm_ = c.norm() == LAYERNORM;
  n.eps_ = c.norm_eps();
  LRKV_TRY_ASSIGN(n.weight_, params.Add({prefix + "weight", {c.d_model()}, InitKind::kOnes, 0, ParamRole::kNorm}));
  if (n.layernorm_) {
    LRKV_TRY_ASSIGN(n.bias_, params.Add({prefix + "bias", {c.d_model()}, InitKind::kZeros, 0, ParamRole::kNorm}));
  }
  return n;
}

absl::Status NormLayer::Forward(const Tensor& x, Tensor& y, NormActivations& a) const {
  const int64_t rows = x.numel() / x.dim(-1);
  a.x = x;
  LRKV_TRY_ASSIGN(a.rstd, Tensor::Empty({rows}, AccumDType(x.dtype()), x.device()));
  if (!layernorm_) return RmsNormForward(x, &weight_->value, eps_, y, a.rstd);
  LRKV_TRY_ASSIGN(a.mean, Tensor::Empty({rows}, AccumDType(x.dtype()), x.device()));
  return LayerNormForward(x, weight_->value, bias_->value, eps_, y, a.mean, a.rstd);
}

absl::Status NormLayer::Backward(const Tensor& dy, const NormActivations& a, Tensor& dx) const {
  if (!layernorm_) return RmsNormBackward(dy, a.x, &weight_->value, a.rstd, dx, &weight_->grad);
  return LayerNormBackward(dy, a.x, weight_->value, a.mean, a.rstd, dx, weight_->grad, bias_->grad);
}

}  // namespace lrkv
