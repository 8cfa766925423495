// The decoder-only transformer: token embedding, n_layers pre-norm blocks, final norm, LM head,
// softmax cross-entropy.
//   tokens, targets: i32 (B, T)   embed.weight: (V, d)   lm_head.weight: (V, d), absent when tied
//   logits = Norm_final(x) W_head^T: (B T, V)
//
// A Decoder holds the part of the model its ModelPlacement names (model_placement.h): under
// pipeline parallelism one stage's layers (with the embedding on the first stage, the final norm,
// head and loss on the last; with tied embeddings both ends hold embed.weight); under tensor
// parallelism its blocks of every layer, and the vocabulary rows [V i / tp, V (i + 1) / tp) of the
// embedding and head: the embedding lookup is summed over TP, the cross-entropy runs on the split
// logits (parallel/vocab_parallel_cross_entropy.h), the head's input gradient is summed over TP.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/block.h"
#include "model/config.pb.h"
#include "model/kv_cache.h"
#include "model/model_placement.h"
#include "model/norm_layer.h"
#include "model/parameter.h"

namespace lrkv {

// What one stage's forward pass keeps for its backward pass, per micro-batch.
struct DecoderActivations {
  Tensor tokens, targets;             // i32 (B, T), first / last stage
  std::vector<Tensor> block_inputs;   // (B, T, d) per block of the stage, plus the last block's output
  std::vector<BlockActivations> blocks;
  NormActivations final_norm;         // last stage:
  Tensor final_normed;                //   (B T, d)
  Tensor logits, lse;                 //   (B T, V / tp), (B T)
};

class Decoder {
 public:
  // `config` must have passed FillDefaults and ValidateModelConfig. Parameters are allocated, not
  // yet initialised: call params().Initialize(seed).
  static absl::StatusOr<std::unique_ptr<Decoder>> Create(const ModelConfig& config, const ModelPlacement& placement = {},
                                                         DType dtype = DType::kF32, Device device = Device::kCpu);

  // One stage's forward pass of a micro-batch. The first stage reads `tokens`, the others `input`
  // (B, T, d), the previous stage's output. The last stage reads `targets` and returns the sum of
  // the per-token losses; the others set `output` (B, T, d) and return 0.
  absl::StatusOr<double> ForwardStage(const Tensor& tokens, const Tensor& input, const Tensor& targets,
                                      DecoderActivations& a, Tensor& output);
  // Backpropagates: on the last stage from the losses, each token's loss weighted `loss_scale`; on
  // the others from `doutput`, the gradient of `output`. Accumulates parameter gradients; sets
  // `dinput` (B, T, d) except on the first stage.
  absl::Status BackwardStage(const DecoderActivations& a, const Tensor& doutput, double loss_scale, Tensor& dinput);

  // The whole model in one process: mean cross-entropy over the B T positions (activations kept
  // for Backward), and backpropagation of loss_scale * d(mean loss), e.g. 1 / accumulation_steps.
  absl::StatusOr<double> Forward(const Tensor& tokens, const Tensor& targets);
  absl::Status Backward(double loss_scale);

  // Decoding with a KV cache (kv_cache.h), on a whole model (one pipeline stage), alone or under
  // tensor parallelism. NewCache: an empty cache for `batch` sequences of up to `max_len` positions.
  absl::StatusOr<KvCache> NewCache(int64_t batch, int64_t max_len) const;
  // Runs the next n tokens of each sequence in `seqs` (tokens: i32 (len(seqs), n)) through the
  // model, appending their positions to the cache: prefill is n = a prompt's length, decoding n = 1.
  // Returns the logits (len(seqs), n, V), whole on every TP rank, equal to Forward's at those
  // positions.
  absl::StatusOr<Tensor> Extend(KvCache& cache, const std::vector<int64_t>& seqs, const Tensor& tokens);

  const Tensor& logits() const { return last_.logits; }
  ParameterSet& params() { return params_; }
  const ModelConfig& config() const { return config_; }
  const ModelPlacement& placement() const { return placement_; }
  // Whether this rank's copy of `p` is the one that counts once in the job (gradient norm,
  // checkpoints, parameter dumps): a parameter replicated over TP on TP rank 0 only, the tied
  // embedding on the first pipeline stage only; every split block is the only copy of itself.
  bool IsPrimaryCopy(const Parameter& p) const;
  // Activation recomputation (config.proto Recompute): what ForwardStage keeps for BackwardStage.
  void set_recompute(Recompute mode);

  // This stage's blocks (its layers, in order).
  const std::vector<std::unique_ptr<Block>>& blocks() const { return blocks_; }

  // KV-cache values per token per layer of this model's attention variant (whole model).
  int64_t KvCacheValuesPerTokenPerLayer() const;

 private:
  Decoder(const ModelConfig& c, const ModelPlacement& placement, DType dtype, Device device)
      : config_(c), placement_(placement), params_(dtype, device, placement.tp_rank) {}
  int64_t vocab_begin() const;  // first vocabulary row of this TP rank

  ModelConfig config_;
  ModelPlacement placement_;
  ParameterSet params_;
  Parameter *embed_ = nullptr, *head_ = nullptr;  // first / last stage; head_ == embed_ when tied
  std::vector<std::unique_ptr<Block>> blocks_;
  NormLayer final_norm_;
  DecoderActivations last_;  // of Forward
  Recompute recompute_ = NONE;
};

}  // namespace lrkv
