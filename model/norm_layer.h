// The block and final norms: RMSNorm (weight) or LayerNorm (weight and bias), over d_model.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/config.pb.h"
#include "model/parameter.h"

namespace lrkv {

struct NormActivations {
  Tensor x;           // (B, T, d) input
  Tensor mean, rstd;  // (B T); mean only for LayerNorm
};

class NormLayer {
 public:
  // Registers `prefix`weight (and `prefix`bias for LayerNorm).
  static absl::StatusOr<NormLayer> Create(const ModelConfig& config, const std::string& prefix, ParameterSet& params);
  absl::Status Forward(const Tensor& x, Tensor& y, NormActivations& a) const;
  absl::Status Backward(const Tensor& dy, const NormActivations& a, Tensor& dx) const;

 private:
  bool layernorm_ = false;
  double eps_ = 0;
  Parameter *weight_ = nullptr, *bias_ = nullptr;
};

}  // namespace lrkv
