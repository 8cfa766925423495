// Writing per-head pieces into a per-head tensor, and the reverse reduction. Used where a variant
// shares one vector across heads (LRKV's K_shared, MLA's RoPE key) or assembles a head from parts
// (MLA's [k_nope; k_rope]).
//   src: (N, Hs, Ds) with Hs = 1 (broadcast to every head) or Hs = H
//   dst: (N, H, Dd); the slice written is dst[n, h, offset : offset + Ds]
#pragma once

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

// dst[n, h, offset + j] = src[n, Hs == 1 ? 0 : h, j]; the rest of dst is untouched.
absl::Status CopyToHeadSlice(const Tensor& src, int64_t offset, Tensor& dst);
// The backward of CopyToHeadSlice: dsrc[n, hs, j] = sum over heads h mapped to hs of ddst[n, h, offset + j].
absl::Status ReduceFromHeadSlice(const Tensor& ddst, int64_t offset, Tensor& dsrc);

}  // namespace lrkv
