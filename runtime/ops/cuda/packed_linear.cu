// The packed layout of packed_linear.h is the CPU register tiles' (decoding on the CPU): cuBLASLt
// multiplies a few rows by the weight as stored, so PackedLinearSuits is false on CUDA and these
// answer Unimplemented.
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/packed_linear.h"

namespace lrkv::cuda {

absl::Status PackLinearWeight(const Tensor&, bool, Tensor&) {
  return absl::UnimplementedError("PackLinearWeight: the packed layout is the CPU kernels' (no CUDA kernel)");
}

absl::Status PackedLinearForward(const Tensor&, const Tensor&, Tensor&) {
  return absl::UnimplementedError("PackedLinearForward: the packed layout is the CPU kernels' (no CUDA kernel)");
}

}  // namespace lrkv::cuda
