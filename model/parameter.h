// Model parameters: a named, ordered set of tensors with their gradients and how to initialise them.
// Initialisation is keyed by (seed, parameter name, global element index), so a parameter gets the
// same values whatever process, thread count or (later) parallel layout creates it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tensor.h"

namespace lrkv {

enum class InitKind { kNormal, kOnes, kZeros };
// What a parameter is, for the optimizer's weight-decay rules (train.decay_norms, train.decay_embeddings).
enum class ParamRole { kWeight, kNorm, kEmbedding };

struct ParameterSpec {
  std::string name;   // "layers.3.attn.wq"
  Shape shape;        // global shape
  InitKind init = InitKind::kNormal;
  double std = 0.0;   // for kNormal
  ParamRole role = ParamRole::kWeight;
};

struct Parameter {
  ParameterSpec spec;
  Tensor value;  // (spec.shape)
  Tensor grad;   // (spec.shape), accumulated by backward passes, zeroed by the optimizer step
};

class ParameterSet {
 public:
  ParameterSet(DType dtype, Device device) : dtype_(dtype), device_(device) {}

  // Allocates value and grad (grad zeroed); the value is filled by Initialize.
  absl::StatusOr<Parameter*> Add(ParameterSpec spec);
  absl::Status Initialize(uint64_t seed);
  absl::Status ZeroGrads();

  Parameter* Find(const std::string& name) const;  // nullptr if absent
  const std::vector<std::unique_ptr<Parameter>>& all() const { return params_; }
  int64_t NumElements() const;
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

 private:
  DType dtype_;
  Device device_;
  std::vector<std::unique_ptr<Parameter>> params_;
};

// N(0, 1) sample for element `index` of parameter `name` under `seed` (Box-Muller on two hashes).
double InitNormal(uint64_t seed, const std::string& name, int64_t index);

}  // namespace lrkv
