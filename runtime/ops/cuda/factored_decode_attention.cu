// LRKV's decoding kernel (factored_decode_attention.h) has no CUDA version: decoding runs on the
// CPU only so far, as CausalAttentionForward's decoding path does (README, "Not yet").
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/factored_decode_attention.h"

namespace lrkv::cuda {

absl::Status FactoredDecodeAttention(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                     const Tensor&, const KeyTransform&, double, Tensor&, Tensor&) {
  return absl::UnimplementedError("FactoredDecodeAttention: decoding runs on the CPU only so far (no CUDA kernel)");
}

}  // namespace lrkv::cuda
