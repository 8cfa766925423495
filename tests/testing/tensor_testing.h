// Test helpers: random tensors, element access, and a finite-difference gradient checker.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tensor.h"

namespace lrkv::testing {

// Uniform in [-1, 1), deterministic in seed. Any float dtype.
Tensor Random(const Shape& shape, uint64_t seed, DType dtype = DType::kF64);
Tensor Tokens(const Shape& shape, int32_t vocab, uint64_t seed);
Tensor ZerosLike(const Tensor& t);
double At(const Tensor& t, int64_t i);          // element i as double (f32 or f64)
void Set(Tensor& t, int64_t i, double value);
// max |a - b| / max(max |b|, tiny)
double RelativeError(const Tensor& a, const Tensor& b);

// An op under test: forward maps the inputs to one output; backward maps (inputs, dy) to one gradient
// per input. The checker compares backward with central differences of L = sum(R * forward(inputs))
// for a fixed random R, element by element, and returns the largest relative error.
struct GradCase {
  std::vector<Tensor> inputs;
  std::function<absl::StatusOr<Tensor>(const std::vector<Tensor>&)> forward;
  std::function<absl::StatusOr<std::vector<Tensor>>(const std::vector<Tensor>&, const Tensor&)> backward;
};
double MaxGradientError(GradCase& c, double h = 1e-5);

}  // namespace lrkv::testing
