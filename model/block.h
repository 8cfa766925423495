// One pre-norm transformer block, x, y: (B, T, d):
//   h = x + Attention(Norm_attn(x));   y = h + MLP(Norm_mlp(h))
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "model/attention/attention_layer.h"
#include "model/mlp.h"
#include "model/norm_layer.h"

namespace lrkv {

struct BlockActivations {
  NormActivations attn_norm;
  AttentionActivations attn;
  NormActivations mlp_norm;
  MlpActivations mlp;
};

class Block {
 public:
  // Parameters are named "layers.<index>.{attn_norm,attn,mlp_norm,mlp}.*".
  // `tp`: the tensor-parallel group (may be null), see attention_layer.h and mlp.h.
  static absl::StatusOr<std::unique_ptr<Block>> Create(const ModelConfig& config, int index, ParameterSet& params,
                                                       Communicator* tp);
  absl::Status Forward(const Tensor& x, Tensor& y, BlockActivations& a);
  absl::Status Backward(const Tensor& dy, const BlockActivations& a, Tensor& dx);
  // Decoding (attention_layer.h): x, y (B', n, d) for the next n positions of the cache rows `seqs`.
  absl::Status Decode(const Tensor& x, const std::vector<int64_t>& seqs, const std::vector<int64_t>& lengths,
                      std::vector<Tensor>& cache, Tensor& y);
  const AttentionLayer& attention() const { return *attn_; }
  AttentionLayer& attention() { return *attn_; }

 private:
  // Norm, `attend`, residual, norm, MLP, residual.
  absl::Status Run(const Tensor& x, Tensor& y, BlockActivations& a,
                   const std::function<absl::Status(const Tensor&, Tensor&)>& attend);

  NormLayer attn_norm_, mlp_norm_;
  std::unique_ptr<AttentionLayer> attn_;
  Mlp mlp_;
};

}  // namespace lrkv
