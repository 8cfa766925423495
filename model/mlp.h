// The feed-forward sublayer, x, y: (B, T, d):
//   GELU / ReLU^2: y = act(x W_in) W_out          w_in: (d, d_ff), w_out: (d_ff, d)
//   SwiGLU:        y = (silu(x W_gate) * (x W_up)) W_out   w_gate, w_up: (d, d_ff)
// Tensor parallelism: w_in, w_gate, w_up column-parallel, w_out row-parallel (d_ff split over tp);
// y and dx are all-reduced over `tp`.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/config.pb.h"
#include "model/parameter.h"
#include "parallel/communicator.h"

namespace lrkv {

struct MlpActivations {
  Tensor x;        // (B, T, d)
  Tensor h, gate;  // (B, T, d_ff): pre-activation (x W_in, or x W_up for SwiGLU); x W_gate for SwiGLU
  Tensor a;        // (B, T, d_ff): activation output
};

class Mlp {
 public:
  static absl::StatusOr<Mlp> Create(const ModelConfig& config, const std::string& prefix, ParameterSet& params,
                                    Communicator* tp);
  absl::Status Forward(const Tensor& x, Tensor& y, MlpActivations& a) const;
  absl::Status Backward(const Tensor& dy, const MlpActivations& a, Tensor& dx) const;

 private:
  MlpActivation activation_ = GELU;
  Parameter *w_in_ = nullptr, *w_gate_ = nullptr, *w_out_ = nullptr;  // w_in_ is W_up for SwiGLU
  Communicator* tp_ = nullptr;
};

}  // namespace lrkv
