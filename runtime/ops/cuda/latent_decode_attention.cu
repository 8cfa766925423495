// MLA's and MLRA's absorbed decoding kernel (latent_decode_attention.h) has no CUDA version:
// decoding runs on the CPU only so far, as CausalAttentionForward's decoding path does (README,
// "Not yet").
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/latent_decode_attention.h"

namespace lrkv::cuda {

absl::Status LatentDecodeAttention(const Tensor&, const std::vector<Tensor>&, const Tensor&, const Tensor*,
                                   const std::vector<int64_t>&, double, Tensor&, Tensor&) {
  return absl::UnimplementedError("LatentDecodeAttention: decoding runs on the CPU only so far (no CUDA kernel)");
}

}  // namespace lrkv::cuda
