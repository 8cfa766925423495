#include "runtime/ops/attention.h"

#include "runtime/flop_counter.h"
#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

// Checks the shapes and resolves groups.group (0: H / Hk). Keys may outnumber queries (decoding:
// the queries are the last positions) where `queries_may_be_last` allows it.
absl::Status CheckAttention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                            const Tensor& lse, KvGroups& groups, bool queries_may_be_last) {
  LRKV_REQUIRE(q.rank() == 4 && k.rank() == 4 && v.rank() == 4, op, ": q, k, v must be (B, T, heads, D)");
  const int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), hk = k.dim(2), tk = k.dim(1);
  LRKV_REQUIRE(tk == t || (queries_may_be_last && tk > t), op, ": ", t, " queries over ", tk, " keys");
  LRKV_TRY(CheckShape(op, "k", k, {b, tk, hk, q.dim(3)}));
  LRKV_TRY(CheckShape(op, "v", v, {b, tk, hk, v.dim(3)}));
  if (groups.group == 0) {
    LRKV_REQUIRE(hk > 0 && h % hk == 0 && groups.q_head_offset == 0, op, ": ", hk, " KV heads do not divide ", h,
                 " query heads");
    groups.group = h / hk;
  }
  LRKV_REQUIRE(groups.q_head_offset >= 0 && (groups.q_head_offset + h - 1) / groups.group < hk, op, ": query heads [",
               groups.q_head_offset, ", ", groups.q_head_offset + h, ") in groups of ", groups.group, " need more than ",
               hk, " KV heads");
  LRKV_TRY(CheckShape(op, "output", o, {b, t, h, v.dim(3)}));
  LRKV_TRY(CheckShape(op, "lse", lse, {b, h, t}));
  LRKV_REQUIRE(lse.dtype() == AccumDType(q.dtype()) && lse.device() == q.device(), op, ": lse must be ",
               DTypeName(AccumDType(q.dtype())), " on the inputs' device, got ", DTypeName(lse.dtype()));
  return CheckSameDeviceAndDType(op, {&q, &k, &v, &o});
}

// Query i of T_q, at position T_k - T_q + i, sees that many keys plus one.
int64_t CausalPairs(const Tensor& q, const Tensor& k) {
  const int64_t tq = q.dim(1), past = k.dim(1) - tq;
  return q.dim(0) * q.dim(2) * (tq * (tq + 1) / 2 + tq * past);
}

}  // namespace

absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& lse, KvGroups groups) {
  LRKV_TRY(CheckAttention("CausalAttentionForward", q, k, v, o, lse, groups, /*queries_may_be_last=*/true));
  LRKV_REQUIRE(q.dim(1) == k.dim(1) || q.device() == Device::kCpu,
               "CausalAttentionForward: queries over a longer key cache (decoding) run on the CPU only so far");
  CountFlops(FlopCategory::kAttentionCore, 2 * CausalPairs(q, k) * (q.dim(3) + v.dim(3)));
  return LRKV_RUN_KERNEL(q.device(), causal_attention_forward, q, k, v, scale, o, lse, groups);
}

absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& lse, double scale, Tensor& dq, Tensor& dk, Tensor& dv,
                                     KvGroups groups) {
  LRKV_TRY(CheckAttention("CausalAttentionBackward", q, k, v, dout, lse, groups, /*queries_may_be_last=*/false));
  LRKV_TRY(CheckShape("CausalAttentionBackward", "dq", dq, q.shape()));
  LRKV_TRY(CheckShape("CausalAttentionBackward", "dk", dk, k.shape()));
  LRKV_TRY(CheckShape("CausalAttentionBackward", "dv", dv, v.shape()));
  CountFlops(FlopCategory::kAttentionCore, 4 * CausalPairs(q, k) * (q.dim(3) + v.dim(3)));
  return LRKV_RUN_KERNEL(q.device(), causal_attention_backward, dout, q, k, v, lse, scale, dq, dk, dv, groups);
}

}  // namespace lrkv
