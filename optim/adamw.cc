#include "optim/adamw.h"

#include "runtime/ops/optimizer_ops.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<AdamW> AdamW::Create(ParameterSet& params, const TrainConfig& t) {
  AdamW opt;
  opt.beta1_ = t.beta1(), opt.beta2_ = t.beta2(), opt.eps_ = t.adam_eps();
  for (const auto& p : params.all()) {
    State s{p.get(), {}, {}, t.weight_decay()};
    if (p->spec.role == ParamRole::kNorm && !t.decay_norms()) s.weight_decay = 0;
    if (p->spec.role == ParamRole::kEmbedding && !t.decay_embeddings()) s.weight_decay = 0;
    LRKV_TRY_ASSIGN(s.m, Tensor::Zeros(p->value.shape(), p->value.dtype(), p->value.device()));
    LRKV_TRY_ASSIGN(s.v, Tensor::Zeros(p->value.shape(), p->value.dtype(), p->value.device()));
    opt.states_.push_back(std::move(s));
  }
  return opt;
}

absl::Status AdamW::Step(double lr) {
  ++step_;
  for (State& s : states_) {
    const AdamWStep args{lr, beta1_, beta2_, eps_, s.weight_decay, step_};
    LRKV_TRY(AdamWUpdate(s.param->value, s.param->grad, s.m, s.v, args));
  }
  return absl::OkStatus();
}

}  // namespace lrkv
