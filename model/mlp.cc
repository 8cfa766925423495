#include "model/mlp.h"

#include <cmath>

#include "model/attention/attention_variant.h"
#include "parallel/tensor_parallel.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/linear.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
constexpr FlopCategory kCat = FlopCategory::kMlp;
Activation Pointwise(MlpActivation a) { return a == RELU_SQUARED ? Activation::kReluSquared : Activation::kGelu; }
}  // namespace

absl::StatusOr<Mlp> Mlp::Create(const ModelConfig& c, const std::string& prefix, ParameterSet& params,
                                Communicator* tp) {
  Mlp m;
  m.tp_ = tp;
  m.activation_ = c.activation();
  const int64_t d = c.d_model(), ff = c.d_ff();
  const bool glu = m.activation_ == SWIGLU;
  LRKV_TRY_ASSIGN(m.w_in_, params.Add(ColumnParallelWeight(prefix + (glu ? "w_up" : "w_in"), d, ff, LinearInitStd(d))));
  if (glu) {
    LRKV_TRY_ASSIGN(m.w_gate_, params.Add(ColumnParallelWeight(prefix + "w_gate", d, ff, LinearInitStd(d))));
  }
  const double out_std = LinearInitStd(ff) / std::sqrt(2.0 * c.n_layers());
  LRKV_TRY_ASSIGN(m.w_out_, params.Add(RowParallelWeight(prefix + "w_out", ff, d, out_std)));
  return m;
}

absl::Status Mlp::Forward(const Tensor& x, Tensor& y, MlpActivations& a) const {
  const int64_t n = x.numel() / x.dim(-1), ff = w_in_->value.dim(1);
  a.x = x;
  LRKV_TRY_ASSIGN(a.h, Tensor::Empty({n, ff}, x.dtype(), x.device()));
  LRKV_TRY_ASSIGN(a.a, Tensor::Empty({n, ff}, x.dtype(), x.device()));
  LRKV_TRY(LinearForward(x, *w_in_, a.h, kCat));
  if (activation_ == SWIGLU) {
    LRKV_TRY_ASSIGN(a.gate, Tensor::Empty({n, ff}, x.dtype(), x.device()));
    LRKV_TRY(LinearForward(x, *w_gate_, a.gate, kCat));
    LRKV_TRY(SwiGluForward(a.gate, a.h, a.a));
  } else {
    LRKV_TRY(ActivationForward(Pointwise(activation_), a.h, a.a));
  }
  LRKV_TRY(LinearForward(a.a, *w_out_, y, kCat));
  return AllReduceOverTp(tp_, y);
}

absl::Status Mlp::Backward(const Tensor& dy, const MlpActivations& a, Tensor& dx) const {
  LRKV_TRY_ASSIGN(Tensor da, Tensor::Empty(a.a.shape(), dy.dtype(), dy.device()));
  LRKV_TRY(LinearBackward(dy, a.a, w_out_->value, &da, w_out_->grad, kCat));
  LRKV_TRY_ASSIGN(Tensor dh, Tensor::Empty(a.h.shape(), dy.dtype(), dy.device()));
  if (activation_ == SWIGLU) {
    LRKV_TRY_ASSIGN(Tensor dgate, Tensor::Empty(a.gate.shape(), dy.dtype(), dy.device()));
    LRKV_TRY(SwiGluBackward(da, a.gate, a.h, dgate, dh));
    LRKV_TRY(LinearBackward(dgate, a.x, w_gate_->value, &dx, w_gate_->grad, kCat));
    LRKV_TRY(LinearBackward(dh, a.x, w_in_->value, &dx, w_in_->grad, kCat, /*accumulate_dx=*/true));
  } else {
    LRKV_TRY(ActivationBackward(Pointwise(activation_), da, a.h, dh));
    LRKV_TRY(LinearBackward(dh, a.x, w_in_->value, &dx, w_in_->grad, kCat));
  }
  return AllReduceOverTp(tp_, dx);
}

}  // namespace lrkv
