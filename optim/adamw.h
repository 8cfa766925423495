// AdamW with decoupled weight decay. Decay applies to weight matrices always, to norm gains and
// biases only with train.decay_norms, to the embedding and LM head only with train.decay_embeddings.
// The optimizer updates a list of pieces (flat element ranges of parameters): every parameter
// whole, or, under ZeRO-1, only this rank's shard; it keeps state (m, v) for its pieces only.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "model/config.pb.h"
#include "model/parameter.h"

namespace lrkv {

struct ParamPiece {
  Parameter* param;
  int64_t begin, end;  // flat element range
};

// Every parameter, whole.
std::vector<ParamPiece> WholeParameters(const ParameterSet& params);

class AdamW {
 public:
  static absl::StatusOr<AdamW> Create(std::vector<ParamPiece> pieces, const TrainConfig& train);
  // One update of every piece from its gradient, at learning rate `lr`, after scaling the
  // gradient by `grad_scale` (the clipping factor).
  absl::Status Step(double lr, double grad_scale = 1.0);
  // Sum of squared gradients over the pieces (for the global norm).
  absl::StatusOr<double> GradSumSquares() const;
  int64_t steps_taken() const { return step_; }

 private:
  struct State {
    Tensor param, grad;  // flat views of the piece
    Tensor m, v;
    double weight_decay;
  };
  std::vector<State> states_;
  double beta1_ = 0, beta2_ = 0, eps_ = 0;
  int64_t step_ = 0;
};

}  // namespace lrkv
