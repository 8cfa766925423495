// AdamW with decoupled weight decay. Decay applies to weight matrices always, to norm gains and
// biases only with train.decay_norms, to the embedding and LM head only with train.decay_embeddings.
// State (m, v) is fp32 or whatever dtype the parameters have, on their device.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "model/config.pb.h"
#include "model/parameter.h"

namespace lrkv {

class AdamW {
 public:
  static absl::StatusOr<AdamW> Create(ParameterSet& params, const TrainConfig& train);
  // One update of every parameter from its gradient at learning rate `lr`.
  absl::Status Step(double lr);
  int64_t steps_taken() const { return step_; }

 private:
  struct State {
    Parameter* param;
    Tensor m, v;
    double weight_decay;
  };
  std::vector<State> states_;
  double beta1_ = 0, beta2_ = 0, eps_ = 0;
  int64_t step_ = 0;
};

}  // namespace lrkv
