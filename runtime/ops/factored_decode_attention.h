// Decoding attention over keys and values kept factored, as LRKV caches them: one query per head
// (the newest position) against every cached position, with each head's key rebuilt, QK-normed and
// rotated inside the kernel, a chunk of positions at a time, so no (S, H, D) key tensor is ever
// written. Head h's key and value at cached position t:
//   K_h[t] = RoPE_t(N(k_shared[t] + k_latent[t, h] B_h^T))   N: weight-free RMSNorm, or none
//   V_h[t] = [v_shared[t]; v_latent[t, h]]                   (D + r wide: the caller applies B_v,h
//                                                              to the averaged latent afterwards)
// which is exactly what rebuilding K_h for all positions, then RmsNormForward, RopeForward and
// CausalAttentionForward would compute, without the 7 passes over the 4 S H D bytes of keys.
//   q: (1, 1, H, D), normed and rotated at position S - 1     o: (1, 1, H, D + r)
//   k_shared, v_shared: (S, D)    k_latent, v_latent: (S, H r)    bk: (H, D, r)    lse: (1, H, 1)
// FLOPs counted as the unfused ops count them: the rebuild 2 S H r D (kAttentionProjection), the
// core 2 S H (D + D + r) (kAttentionCore). CPU only (decoding is CPU only so far).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// What the layer does to a key between its projection and the score.
struct KeyTransform {
  bool qk_norm = false;
  double eps = 0;         // RMSNorm's epsilon, when qk_norm
  int64_t rope_dims = 0;  // RoPE on the last rope_dims entries (rope.h)
  double theta = 10000;
};

absl::Status FactoredDecodeAttention(const Tensor& q, const Tensor& k_shared, const Tensor& k_latent,
                                     const Tensor& bk, const Tensor& v_shared, const Tensor& v_latent,
                                     const KeyTransform& keys, double scale, Tensor& o, Tensor& lse);

}  // namespace lrkv
