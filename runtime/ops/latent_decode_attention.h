// Decoding attention over a latent cache with the up-projections absorbed (DeepSeek-V2), as MLA and
// MLRA's latent blocks cache it: one query per head (the newest position) against every cached
// position's [latent c_t; rotated RoPE key rope_t], which serve as keys and (the latent) as values.
// MLA has one latent; MLRA's B blocks are B attentions per head that share the RoPE key and the
// head's RoPE query, so one call takes every block a head reads and scores the RoPE part once per
// position for all of them: 2 S H d_R FLOPs instead of B times that (a quarter of MLRA-4's). The
// latents and the RoPE keys are read in place: MLA caches them as two parts, MLRA's blocks share
// one RoPE key part. Head h's score against block b at position t:
//   scale * (q_h,b . c_b,t + q_h,R . rope_t) * g_h,b(t)
// where q_h,b is the head's NoPE query already mapped into block b (q_nope,h alpha W_h,b^T).
// Without QK-norm g = 1. With it, g_h,b(t) is the key's 1 / rms, which needs the whole key
// [alpha c_b,t W_h,b ; rope_t] and so the up-projection: the variants compute it once, when the
// position is cached, and cache it beside the latent (H values per position and block), so that a
// step reads each cached byte once and applies no up-projection to the past.
// The query side is normed and rotated by the caller, as for the other cores.
//   q: (1, 1, H, B c + d_R): per head its B block queries, then its RoPE query
//   latents: B tensors (S, c)   rope: (S, d_R)
//   key_scales: null without QK-norm; with it (S, W), g_h,b(t) at column firsts[b] + h
//   o: (1, 1, H, B c), per head block b's softmax-weighted mean of its latents at [b c, (b + 1) c)
//   (the caller applies W_UV)   lse: (1, H, B)
// FLOPs: 2 S H (B (c + c) + d_R) (kAttentionCore). CPU only (decoding is CPU only so far).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status LatentDecodeAttention(const Tensor& q, const std::vector<Tensor>& latents, const Tensor& rope,
                                   const Tensor* key_scales, const std::vector<int64_t>& firsts, double scale, Tensor& o,
                                   Tensor& lse);

}  // namespace lrkv
