// One attention sublayer: a variant's projections, then the shared part
//   q, k <- QK-norm (optional, weight-free RMSNorm per head) <- RoPE on the last rope_dims entries
//   o = causal softmax(q k^T / sqrt(Dqk)) v;  o summed over each output head's branches (MLRA);
//   y = o W_O with wo: (H Dv, d)
// x, y: (B, T, d).
// Tensor parallelism: the variant's projections are column-parallel (this rank's heads) and wo is
// row-parallel, so the rank's y is a partial sum, all-reduced over `tp` in Forward (Megatron's g);
// likewise the variant's dx, all-reduced in Backward (Megatron's f).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/attention/attention_variant.h"
#include "model/config.pb.h"
#include "parallel/communicator.h"

namespace lrkv {

// Everything the backward pass of one attention sublayer needs from its forward pass.
struct AttentionActivations {
  Tensor x;                    // (B, T, d), the sublayer input
  std::unique_ptr<VariantSaved> variant;  // the variant's own
  Tensor q_raw, k_raw;         // (B, T, H, Dqk), (B, T, Hk, Dqk) before QK-norm (kept only with QK-norm)
  Tensor q_rstd, k_rstd;       // (B T H), (B T Hk)
  Tensor q, k, v;              // after QK-norm and RoPE: what the core saw
  Tensor lse;                  // (B, H, T), each query row's log-sum-exp (runtime/ops/attention.h)
  Tensor o;                    // (B, T, H, Dv)
  Tensor o_heads;              // (B T, 1, H / branches * Dv): the branches summed (only when branches > 1)
};

class AttentionLayer {
 public:
  // `tp` may be null (no tensor parallelism); it must match params.tp().
  static absl::StatusOr<std::unique_ptr<AttentionLayer>> Create(const ModelConfig& config, const std::string& prefix,
                                                                ParameterSet& params, Communicator* tp);
  absl::Status Forward(const Tensor& x, Tensor& y, AttentionActivations& a);
  // dx written; parameter gradients accumulated.
  absl::Status Backward(const Tensor& dy, const AttentionActivations& a, Tensor& dx);
  // Decoding: x (B', n, d) holds the next n positions of the cache rows `seqs` (B' of them), whose
  // cache parts (B, S_max, width) gain these positions; y (B', n, d) as Forward's for them.
  absl::Status Decode(const Tensor& x, const std::vector<int64_t>& seqs, const std::vector<int64_t>& lengths,
                      std::vector<Tensor>& cache, Tensor& y);
  std::vector<int64_t> CacheParts() const { return variant_->CacheParts(); }
  // Drop the core's output and log-sum-exp after Forward and recompute them in Backward.
  void set_recompute_core(bool on) { recompute_core_ = on; }
  const AttentionVariant& variant() const { return *variant_; }

 private:
  absl::Status OutputProjection(const Tensor& o, Tensor& y, Tensor& o_heads);
  // o (B, T, H, Dv) with each head's branches summed (into o_heads when branches > 1).
  absl::StatusOr<Tensor> SumBranches(const Tensor& o, Tensor& o_heads) const;
  absl::StatusOr<Tensor> NormAndRotate(const Tensor& t, int64_t first, bool norm, bool rotate) const;

  std::unique_ptr<AttentionVariant> variant_;
  Parameter* wo_ = nullptr;
  Communicator* tp_ = nullptr;
  bool qk_norm_ = false, recompute_core_ = false;
  double eps_ = 0, rope_theta_ = 0;
};

}  // namespace lrkv
