// Decoding attention over a latent cache with the up-projections absorbed (DeepSeek-V2), as MLA and
// each of MLRA's latent blocks cache it: one query per head (the newest position) against every
// cached position's [latent c_t; rotated RoPE key rope_t], which serve as keys and (the latent) as
// values. The latents and the RoPE keys come as two tensors, each read in place: MLA caches them
// as two parts, and MLRA's blocks share one RoPE key part. Head h's
// score at position t:
//   scale * (q_h[:c] . c_t + q_h[c:] . rope_t) * g_h(t)
// where q_h[:c] is the head's NoPE query already mapped into the latent (q_nope,h alpha W_h^T) and
// g_h(t) = 1 without a key norm. With QK-norm, which acts on the whole key k_h(t) =
// [alpha c_t W_h ; rope_t] (D = d_n + d_R entries; rotation keeps its norm), the score needs that
// key's 1 / rms, which the kernel takes from a chunk of latents times W at a time (one GEMM for all
// heads, into a tile that stays in cache) without writing any key:
//   g_h(t) = 1 / sqrt((||alpha c_t W_h||^2 + ||rope_t||^2) / D + eps)
// The query side is normed and rotated by the caller, as for the other cores.
//   q: (1, 1, H, c + d_R)   latent: (S, c)   rope: (S, d_R)   w_up: (c, H d_n), only read with the norm
//   o: (1, 1, H, c) the softmax-weighted mean of the latents (the caller applies W_UV)   lse: (1, H, 1)
// FLOPs: the core 2 S H (c + d_R + c) (kAttentionCore); the norm's GEMM 2 S H c d_n
// (kAttentionProjection). CPU only (decoding is CPU only so far).
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// The key norm of latent_decode_attention.h: off, or RMSNorm (weight-free, epsilon eps) of keys
// whose NoPE part is alpha c W_h.
struct LatentKeyNorm {
  bool on = false;
  double eps = 0;
  double alpha = 1;
};

absl::Status LatentDecodeAttention(const Tensor& q, const Tensor& latent, const Tensor& rope, const Tensor& w_up,
                                   const LatentKeyNorm& norm, double scale, Tensor& o, Tensor& lse);

}  // namespace lrkv
