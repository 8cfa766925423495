// AdamW with decoupled weight decay. Decay applies to weight matrices always, to norm gains and
// biases only with train.decay_norms, to the embedding and LM head only with train.decay_embeddings.
// The optimizer updates a list of pieces (flat element ranges of parameters): every parameter
// whole, or, under ZeRO-1, only this rank's shard; it keeps state (m, v) for its pieces only.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.pb.h"
#include "model/parameter.h"

namespace lrkv {

struct ParamPiece {
  Parameter* param;
  int64_t begin, end;  // flat element range
  // Whether GradSumSquares counts it: a parameter held by several ranks (replicated over TP, or
  // tied embeddings on both pipeline ends) counts on one of them only.
  bool in_grad_norm = true;
};

// Every parameter, whole.
std::vector<ParamPiece> WholeParameters(const ParameterSet& params);

class AdamW {
 public:
  static absl::StatusOr<AdamW> Create(std::vector<ParamPiece> pieces, const TrainConfig& train);
  // One update of every piece from its gradient, at learning rate `lr`, after scaling the
  // gradient by `grad_scale` (the clipping factor).
  absl::Status Step(double lr, double grad_scale = 1.0);
  // Sum of squared gradients over the pieces that count in the norm (for the global norm).
  absl::StatusOr<double> GradSumSquares() const;
  // The name of the first parameter (in model order) with a non-finite gradient in this rank's
  // pieces; empty when all are finite.
  absl::StatusOr<std::string> FirstNonFiniteGradient() const;
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t steps) { step_ = steps; }

  // The state of one piece, for checkpoints: its parameter and range, and its moments (flat
  // tensors sharing the optimizer's storage: writing them sets the state).
  struct PieceState {
    const Parameter* param;
    int64_t begin, end;
    Tensor m, v;
  };
  std::vector<PieceState> piece_states() const;

 private:
  struct State {
    ParamPiece piece;
    Tensor param, grad;  // flat views of the piece
    Tensor m, v;
    double weight_decay;
    bool in_grad_norm;
  };
  std::vector<State> states_;
  double beta1_ = 0, beta2_ = 0, eps_ = 0;
  int64_t step_ = 0;
};

}  // namespace lrkv
