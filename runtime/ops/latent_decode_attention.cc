#include "runtime/ops/latent_decode_attention.h"

#include "runtime/flop_counter.h"
#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status LatentDecodeAttention(const Tensor& q, const std::vector<Tensor>& latents, const Tensor& rope,
                                   const Tensor* key_scales, const std::vector<int64_t>& firsts, double scale, Tensor& o,
                                   Tensor& lse) {
  constexpr const char* op = "LatentDecodeAttention";
  const int64_t nb = static_cast<int64_t>(latents.size());
  LRKV_REQUIRE(nb > 0, op, ": needs at least one latent block");
  LRKV_REQUIRE(q.rank() == 4 && q.dim(0) == 1 && q.dim(1) == 1, op, ": q must be (1, 1, H, B c + d_R), got ",
               q.DebugString());
  const Tensor& first_block = latents[0];
  const int64_t h = q.dim(2), width = q.dim(3), s = first_block.rank() == 2 ? first_block.dim(0) : -1;
  const int64_t c = first_block.rank() == 2 ? first_block.dim(1) : -1, dr = width - nb * c;
  LRKV_REQUIRE(s > 0 && c > 0, op, ": a latent block must be (S, c) with S, c > 0, got ", first_block.DebugString());
  LRKV_REQUIRE(dr >= 0, op, ": q's width ", width, " is less than its ", nb, " block(s) of ", c);
  std::vector<const Tensor*> same = {&q, &rope, &o};
  for (const Tensor& latent : latents) {
    LRKV_TRY(CheckShape(op, "latent", latent, {s, c}));
    same.push_back(&latent);
  }
  LRKV_TRY(CheckShape(op, "rope", rope, {s, dr}));
  LRKV_TRY(CheckShape(op, "o", o, {1, 1, h, nb * c}));
  LRKV_TRY(CheckShape(op, "lse", lse, {1, h, nb}));
  LRKV_TRY(CheckDType(op, "lse", lse, AccumDType(q.dtype())));
  if (key_scales != nullptr) {
    const Tensor& g = *key_scales;
    LRKV_REQUIRE(g.rank() == 2 && g.dim(0) == s, op, ": the key scales must be (S, W) with S = ", s, ", got ",
                 g.DebugString());
    LRKV_REQUIRE(static_cast<int64_t>(firsts.size()) == nb, op, ": ", firsts.size(), " key scale column(s) for ", nb,
                 " latent block(s)");
    for (const int64_t first : firsts) {
      LRKV_REQUIRE(first >= 0 && first + h <= g.dim(1), op, ": a block's key scale columns [", first, ", ", first + h,
                   ") must lie inside the scales' ", g.dim(1));
    }
    same.push_back(&g);
  }
  LRKV_TRY(CheckSameDeviceAndDType(op, same));
  LRKV_REQUIRE(lse.device() == q.device(), op, ": lse must be on the inputs' device");
  CountFlops(FlopCategory::kAttentionCore, 2 * s * h * (nb * 2 * c + dr));
  return LRKV_RUN_KERNEL(q.device(), latent_decode_attention, q, latents, rope, key_scales, firsts, scale, o, lse);
}

}  // namespace lrkv
