#include "optim/adamw.h"

#include <cmath>

#include "runtime/ops/optimizer_ops.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
absl::StatusOr<Tensor> FlatRange(const Tensor& t, int64_t begin, int64_t end) {
  LRKV_TRY_ASSIGN(Tensor flat, t.View({t.numel()}));
  return flat.Slice(begin, end);
}
}  // namespace

std::vector<ParamPiece> WholeParameters(const ParameterSet& params) {
  std::vector<ParamPiece> pieces;
  for (const auto& p : params.all()) pieces.push_back({p.get(), 0, p->value.numel()});
  return pieces;
}

absl::StatusOr<AdamW> AdamW::Create(std::vector<ParamPiece> pieces, const TrainConfig& t) {
  AdamW opt;
  opt.beta1_ = t.beta1(), opt.beta2_ = t.beta2(), opt.eps_ = t.adam_eps();
  for (const ParamPiece& piece : pieces) {
    const Parameter& p = *piece.param;
    State s;
    s.piece = piece;
    s.weight_decay = t.weight_decay();
    s.in_grad_norm = piece.in_grad_norm;
    if (p.spec.role == ParamRole::kNorm && !t.decay_norms()) s.weight_decay = 0;
    if (p.spec.role == ParamRole::kEmbedding && !t.decay_embeddings()) s.weight_decay = 0;
    LRKV_TRY_ASSIGN(s.param, MasterElements(p, piece.begin, piece.end));
    LRKV_TRY_ASSIGN(s.grad, FlatRange(p.grad, piece.begin, piece.end));
    LRKV_TRY_ASSIGN(s.m, Tensor::Zeros(s.param.shape(), p.master.dtype(), p.master.device()));
    LRKV_TRY_ASSIGN(s.v, Tensor::Zeros(s.param.shape(), p.master.dtype(), p.master.device()));
    opt.states_.push_back(std::move(s));
  }
  return opt;
}

std::vector<AdamW::PieceState> AdamW::piece_states() const {
  std::vector<PieceState> out;
  for (const State& s : states_) out.push_back({s.piece.param, s.piece.begin, s.piece.end, s.m, s.v});
  return out;
}

absl::StatusOr<double> AdamW::GradSumSquares() const {
  double total = 0;
  for (const State& s : states_) {
    if (!s.in_grad_norm) continue;
    double sq = 0;
    LRKV_TRY(SumSquares(s.grad, &sq));
    total += sq;
  }
  return total;
}

absl::StatusOr<std::string> AdamW::FirstNonFiniteGradient() const {
  for (const State& s : states_) {
    double sq = 0;
    LRKV_TRY(SumSquares(s.grad, &sq));
    if (!std::isfinite(sq)) return s.piece.param->spec.name;
  }
  return std::string();
}

absl::Status AdamW::Step(double lr, double grad_scale) {
  ++step_;
  for (State& s : states_) {
    if (grad_scale != 1.0) LRKV_TRY(Scale(s.grad, grad_scale));
    const AdamWStep args{lr, beta1_, beta2_, eps_, s.weight_decay, step_};
    LRKV_TRY(AdamWUpdate(s.param, s.grad, s.m, s.v, args));
  }
  return absl::OkStatus();
}

}  // namespace lrkv
