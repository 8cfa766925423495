// Decoding attention over a latent cache with the up-projections absorbed (DeepSeek-V2), as MLA and
// each of MLRA's latent blocks cache it: one query per head (the newest position) against every
// cached position's [latent c_t; rotated RoPE key rope_t], which serve as keys and (the latent) as
// values. The latents and the RoPE keys come as two tensors, each read in place: MLA caches them
// as two parts, and MLRA's blocks share one RoPE key part. Head h's score at position t:
//   scale * (q_h[:c] . c_t + q_h[c:] . rope_t) * g_h(t)
// where q_h[:c] is the head's NoPE query already mapped into the latent (q_nope,h alpha W_h^T).
// Without QK-norm g_h(t) = 1. With it, g_h(t) is the key's 1 / rms, which needs the whole key
// [alpha c_t W_h ; rope_t] and so the up-projection: the variants compute it once, when the
// position is cached, and cache it beside the latent (H values per position), so that a step reads
// each cached byte once and applies no up-projection to the past.
// The query side is normed and rotated by the caller, as for the other cores.
//   q: (1, 1, H, c + d_R)   latent: (S, c)   rope: (S, d_R)
//   key_scales: null without QK-norm; with it (S, W), g_h(t) at column first + h (MLRA keeps every
//   block's heads in one cache part)
//   o: (1, 1, H, c) the softmax-weighted mean of the latents (the caller applies W_UV)   lse: (1, H, 1)
// FLOPs: 2 S H (c + d_R + c) (kAttentionCore). CPU only (decoding is CPU only so far).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status LatentDecodeAttention(const Tensor& q, const Tensor& latent, const Tensor& rope, const Tensor* key_scales,
                                   int64_t first, double scale, Tensor& o, Tensor& lse);

}  // namespace lrkv
