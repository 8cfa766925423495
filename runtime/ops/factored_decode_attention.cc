#include "runtime/ops/factored_decode_attention.h"

#include "runtime/flop_counter.h"
#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status FactoredDecodeAttention(const Tensor& q, const Tensor& k_shared, const Tensor& k_latent,
                                     const Tensor& bk, const Tensor& v_shared, const Tensor& v_latent,
                                     const KeyTransform& keys, double scale, Tensor& o, Tensor& lse) {
  constexpr const char* op = "FactoredDecodeAttention";
  LRKV_REQUIRE(q.rank() == 4 && q.dim(0) == 1 && q.dim(1) == 1, op, ": q must be (1, 1, H, D), got ",
               q.DebugString());
  LRKV_REQUIRE(bk.rank() == 3, op, ": bk must be (H, D, r), got ", bk.DebugString());
  const int64_t h = q.dim(2), d = q.dim(3), r = bk.dim(2), s = k_shared.rank() == 2 ? k_shared.dim(0) : -1;
  LRKV_REQUIRE(s > 0, op, ": k_shared must be (S, D) with S > 0, got ", k_shared.DebugString());
  LRKV_TRY(CheckShape(op, "k_shared", k_shared, {s, d}));
  LRKV_TRY(CheckShape(op, "v_shared", v_shared, {s, d}));
  LRKV_TRY(CheckShape(op, "k_latent", k_latent, {s, h * r}));
  LRKV_TRY(CheckShape(op, "v_latent", v_latent, {s, h * r}));
  LRKV_TRY(CheckShape(op, "bk", bk, {h, d, r}));
  LRKV_TRY(CheckShape(op, "o", o, {1, 1, h, d + r}));
  LRKV_TRY(CheckShape(op, "lse", lse, {1, h, 1}));
  LRKV_REQUIRE(keys.rope_dims >= 0 && keys.rope_dims % 2 == 0 && keys.rope_dims <= d, op, ": rope_dims ",
               keys.rope_dims, " must be even and at most the head dimension ", d);
  LRKV_TRY(CheckDType(op, "lse", lse, AccumDType(q.dtype())));
  LRKV_TRY(CheckSameDeviceAndDType(op, {&q, &k_shared, &k_latent, &bk, &v_shared, &v_latent, &o}));
  LRKV_REQUIRE(lse.device() == q.device(), op, ": lse must be on the inputs' device");
  CountFlops(FlopCategory::kAttentionProjection, 2 * s * h * r * d);
  CountFlops(FlopCategory::kAttentionCore, 2 * s * h * (d + d + r));
  return LRKV_RUN_KERNEL(q.device(), factored_decode_attention, q, k_shared, k_latent, bk, v_shared, v_latent, keys,
                         scale, o, lse);
}

}  // namespace lrkv
