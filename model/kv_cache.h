// The KV cache of a batch of sequences being decoded, on this rank: for every layer, one
// (B, S_max, width) tensor per part its attention variant caches (AttentionVariant::CacheParts:
// MHA's K and V, LRKV's shared K/V and latents, MLA's latent and RoPE key, MLRA's latent blocks and
// RoPE key, and under QK-norm MLA's and MLRA's key scales), and per sequence how many positions are
// filled. Nothing else survives between tokens, so its bytes are the variant's KV cache, per TP
// rank.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/tensor.h"

namespace lrkv {

struct KvCache {
  int64_t max_len = 0;
  std::vector<int64_t> lengths;             // per sequence
  std::vector<std::vector<Tensor>> layers;  // [layer][part], each (B, S_max, width)

  // Values cached per token, summed over this rank's layers and parts.
  int64_t ValuesPerToken() const {
    int64_t v = 0;
    for (const auto& parts : layers)
      for (const Tensor& p : parts) v += p.dim(2);
    return v;
  }
  // Bytes allocated on this rank (B x S_max positions).
  int64_t Bytes() const {
    int64_t b = 0;
    for (const auto& parts : layers)
      for (const Tensor& p : parts) b += p.nbytes();
    return b;
  }
};

}  // namespace lrkv
