#include "runtime/ops/gemm.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {

GemmArgs GemmArgs::Dense(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b) {
  GemmArgs g;
  g.m = m, g.n = n, g.k = k, g.trans_a = trans_a, g.trans_b = trans_b;
  g.lda = trans_a ? m : k;
  g.ldb = trans_b ? k : n;
  g.ldc = n;
  return g;
}

namespace {
// The last element a batched matrix access touches must lie inside the tensor.
absl::Status CheckExtent(const char* name, const Tensor& t, int64_t rows, int64_t cols, int64_t ld,
                         int64_t batch, int64_t stride) {
  if (rows == 0 || cols == 0 || batch == 0) return absl::OkStatus();
  LRKV_REQUIRE(ld >= cols, "Gemm: leading dimension of ", name, " (", ld, ") < columns (", cols, ")");
  const int64_t last = (batch - 1) * stride + (rows - 1) * ld + cols;
  LRKV_REQUIRE(last <= t.numel(), "Gemm: ", name, " ", t.DebugString(), " too small for a ", rows, "x",
               cols, " matrix (ld ", ld, ", batch ", batch, ", stride ", stride, ")");
  return absl::OkStatus();
}
}  // namespace

absl::Status Gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g, FlopCategory category) {
  LRKV_TRY(CheckSameDeviceAndDType("Gemm", {&a, &b}));
  LRKV_REQUIRE(c.defined() && c.device() == a.device(), "Gemm: C ", c.DebugString(), " not on A's device");
  LRKV_TRY(CheckAccumulatorDType("Gemm", "C", c, a.dtype()));
  LRKV_REQUIRE(g.m >= 0 && g.n >= 0 && g.k >= 0 && g.batch >= 0, "Gemm: negative size");
  LRKV_TRY(CheckExtent("A", a, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda, g.batch, g.stride_a));
  LRKV_TRY(CheckExtent("B", b, g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.ldb, g.batch, g.stride_b));
  LRKV_TRY(CheckExtent("C", c, g.m, g.n, g.ldc, g.batch, g.stride_c));
  CountFlops(category, 2 * g.m * g.n * g.k * g.batch);
  return LRKV_RUN_KERNEL(c.device(), gemm, a, b, c, g);
}

}  // namespace lrkv
