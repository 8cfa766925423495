#include "runtime/ops/latent_decode_attention.h"

#include "runtime/flop_counter.h"
#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status LatentDecodeAttention(const Tensor& q, const Tensor& latent, const Tensor& rope, const Tensor* key_scales,
                                   int64_t first, double scale, Tensor& o, Tensor& lse) {
  constexpr const char* op = "LatentDecodeAttention";
  LRKV_REQUIRE(q.rank() == 4 && q.dim(0) == 1 && q.dim(1) == 1, op, ": q must be (1, 1, H, c + d_R), got ",
               q.DebugString());
  LRKV_REQUIRE(o.rank() == 4, op, ": o must be (1, 1, H, c), got ", o.DebugString());
  const int64_t h = q.dim(2), width = q.dim(3), c = o.dim(3), s = latent.rank() == 2 ? latent.dim(0) : -1;
  LRKV_REQUIRE(c > 0 && c <= width, op, ": o's width ", c, " must be in (0, ", width, "], the query's");
  LRKV_REQUIRE(s > 0, op, ": latent must be (S, c) with S > 0, got ", latent.DebugString());
  LRKV_TRY(CheckShape(op, "latent", latent, {s, c}));
  LRKV_TRY(CheckShape(op, "rope", rope, {s, width - c}));
  LRKV_TRY(CheckShape(op, "o", o, {1, 1, h, c}));
  LRKV_TRY(CheckShape(op, "lse", lse, {1, h, 1}));
  LRKV_TRY(CheckDType(op, "lse", lse, AccumDType(q.dtype())));
  if (key_scales != nullptr) {
    const Tensor& g = *key_scales;
    LRKV_REQUIRE(g.rank() == 2 && g.dim(0) == s && first >= 0 && first + h <= g.dim(1), op,
                 ": the key scales must be (S, W) = (", s, ", W) with columns [", first, ", ", first + h,
                 ") inside W, got ", g.DebugString());
    LRKV_TRY(CheckSameDeviceAndDType(op, {&q, &latent, &rope, &g, &o}));
  } else {
    LRKV_TRY(CheckSameDeviceAndDType(op, {&q, &latent, &rope, &o}));
  }
  LRKV_REQUIRE(lse.device() == q.device(), op, ": lse must be on the inputs' device");
  CountFlops(FlopCategory::kAttentionCore, 2 * s * h * (width + c));
  return LRKV_RUN_KERNEL(q.device(), latent_decode_attention, q, latent, rope, key_scales, first, scale, o,
                         lse);
}

}  // namespace lrkv
