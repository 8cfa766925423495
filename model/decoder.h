// The decoder-only transformer: token embedding, n_layers pre-norm blocks, final norm, LM head,
// mean softmax cross-entropy.
//   tokens, targets: i32 (B, T)   embed.weight: (V, d)   lm_head.weight: (V, d), absent when tied
//   logits = Norm_final(x) W_head^T: (B T, V)
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/block.h"
#include "model/config.pb.h"
#include "model/norm_layer.h"
#include "model/parameter.h"

namespace lrkv {

class Decoder {
 public:
  // `config` must have passed FillDefaults and ValidateModelConfig. Parameters are allocated, not
  // yet initialised: call params().Initialize(seed).
  static absl::StatusOr<std::unique_ptr<Decoder>> Create(const ModelConfig& config, DType dtype = DType::kF32,
                                                         Device device = Device::kCpu);

  // Mean cross-entropy over the B T positions; keeps the activations for Backward.
  absl::StatusOr<double> Forward(const Tensor& tokens, const Tensor& targets);
  // Backpropagates loss_scale * d(mean loss) into the parameter gradients (accumulating), e.g.
  // loss_scale = 1 / accumulation_steps.
  absl::Status Backward(double loss_scale);

  const Tensor& logits() const { return logits_; }
  ParameterSet& params() { return params_; }
  const ModelConfig& config() const { return config_; }
  // KV-cache values per token per layer of this model's attention variant.
  int64_t KvCacheValuesPerTokenPerLayer() const;

 private:
  Decoder(const ModelConfig& c, DType dtype, Device device) : config_(c), params_(dtype, device) {}

  ModelConfig config_;
  ParameterSet params_;
  Parameter *embed_ = nullptr, *head_ = nullptr;  // head_ == embed_ when tied
  std::vector<std::unique_ptr<Block>> blocks_;
  NormLayer final_norm_;

  // Activations of the last Forward.
  Tensor tokens_, targets_;
  std::vector<Tensor> block_inputs_;         // (B, T, d) per block, plus the final block's output
  std::vector<BlockActivations> block_acts_;
  NormActivations final_norm_acts_;
  Tensor final_normed_;                      // (B T, d)
  Tensor logits_, lse_;                      // (B T, V), (B T)
};

}  // namespace lrkv
