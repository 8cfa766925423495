// The compressed projections MLA and MLRA share:
//   a latent: x (N, d) -> x W_down (N, c) -> RMSNorm with its own gain -> latent (N, c);
//   the query path: q = x W_Q, or with a query latent of width c' (q_lora_rank > 0)
//   q = latent_q(x) W_up with W_up (c', H Dqk).
// Tensor parallelism: a latent's W_down and gain are replicated on every rank (their gradients are
// partial sums over the rank's heads, summed over TP); W_Q and W_up are split by head.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "model/attention/head_maps.h"
#include "model/config.pb.h"
#include "model/parameter.h"
#include "runtime/tensor.h"

namespace lrkv {

// One latent's forward, kept for backward.
struct LatentSaved {
  Tensor raw;     // (N, c), x W_down
  Tensor rstd;    // (N)
  Tensor latent;  // (N, c), normalised: what decoding caches for a KV latent
};

class LatentProjection {
 public:
  // Registers `down_name` (d, width) and `norm_name` (width) under `prefix`.
  static absl::StatusOr<LatentProjection> Create(ParameterSet& params, const std::string& prefix,
                                                 const std::string& down_name, const std::string& norm_name,
                                                 int64_t d, int64_t width, double eps);
  absl::Status Forward(const Tensor& x, LatentSaved& saved) const;
  // dx += the latent path's part of x's gradient; the parameters' gradients accumulate.
  absl::Status Backward(const Tensor& x, const LatentSaved& saved, const Tensor& dlatent, Tensor& dx) const;
  int64_t width() const;
  // W_down diag(gain) (d, width): the latent as a linear map of x, normalisation statistics left out
  // (head_maps.h).
  absl::StatusOr<Eigen::MatrixXd> Map() const;

 private:
  Parameter *down_ = nullptr, *norm_ = nullptr;
  double eps_ = 0;
};

// QK-norm's scale 1 / rms of each key, as the layer's weight-free RMSNorm computes it: what MLA and
// MLRA cache beside their latents under QK-norm (attention_variant.h, AbsorbsDecoding).
//   k (N, Hk, Dqk), overwritten with the normed keys -> (N Hk) in k's dtype
absl::StatusOr<Tensor> KeyScales(Tensor& k, double eps);

class LatentQuery {
 public:
  // Registers wq (d, H Dqk), or wq_down, q_norm.weight and wq_up when q_rank > 0; H = n_heads.
  // `whole`: every head on every TP rank (W_Q and W_up not split).
  static absl::StatusOr<LatentQuery> Create(const ModelConfig& c, const std::string& prefix, ParameterSet& params,
                                            int64_t qk_dim, int64_t q_rank, bool whole = false);
  // x (N, d) -> q (N, H_local, Dqk), written.
  absl::Status Forward(const Tensor& x, Tensor& q, LatentSaved& saved) const;
  // dx written (the first path of x's gradient; later paths accumulate into it).
  absl::Status Backward(const Tensor& x, const LatentSaved& saved, const Tensor& dq, Tensor& dx) const;
  // The query as a linear map of x (d, H_local Dqk): wq, or W_down diag(gain) wq_up.
  absl::StatusOr<Eigen::MatrixXd> Map() const;

 private:
  Parameter* wq_ = nullptr;  // without query compression
  LatentProjection latent_;  // with it
  Parameter* wq_up_ = nullptr;
};

}  // namespace lrkv
