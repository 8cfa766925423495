// One pre-norm transformer block, x, y: (B, T, d):
//   h = x + Attention(Norm_attn(x));   y = h + MLP(Norm_mlp(h))
#pragma once

#include <memory>

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
  const AttentionLayer& attention() const { return *attn_; }

 private:
  NormLayer attn_norm_, mlp_norm_;
  std::unique_ptr<AttentionLayer> attn_;
  Mlp mlp_;
};

}  // namespace lrkv
