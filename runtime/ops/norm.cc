// Launchers of RMSNorm and LayerNorm: they share the (N, C) row checks.
#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/ops/layernorm.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
absl::Status CheckRows(const char* op, const Tensor& x, const Tensor& y, const Tensor* w, const Tensor& stat) {
  LRKV_REQUIRE(x.rank() >= 1, op, ": x must have a last dimension");
  const int64_t c = x.dim(-1);
  LRKV_TRY(CheckShape(op, "output", y, x.shape()));
  if (w != nullptr) LRKV_TRY(CheckShape(op, "weight", *w, {c}));
  LRKV_TRY(CheckShape(op, "row statistic", stat, {c == 0 ? 0 : x.numel() / c}));
  LRKV_TRY(CheckDType(op, "row statistic", stat, AccumDType(x.dtype())));
  LRKV_REQUIRE(stat.device() == x.device(), op, ": row statistic on ", DeviceName(stat.device()));
  return CheckSameDeviceAndDType(op, {&x, &y, w});
}
}  // namespace

absl::Status RmsNormForward(const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd) {
  LRKV_TRY(CheckRows("RmsNormForward", x, y, w, rstd));
  return LRKV_RUN_KERNEL(x.device(), rms_norm_forward, x, w, eps, y, rstd);
}

absl::Status RmsNormBackward(const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd,
                             Tensor& dx, Tensor* dw) {
  LRKV_TRY(CheckRows("RmsNormBackward", x, dy, w, rstd));
  LRKV_TRY(CheckShape("RmsNormBackward", "dx", dx, x.shape()));
  LRKV_REQUIRE((w == nullptr) == (dw == nullptr), "RmsNormBackward: dw must be given exactly when w is");
  if (dw != nullptr) {
    LRKV_TRY(CheckShape("RmsNormBackward", "dw", *dw, w->shape()));
    LRKV_TRY(CheckAccumulatorDType("RmsNormBackward", "dw", *dw, x.dtype()));
  }
  return LRKV_RUN_KERNEL(x.device(), rms_norm_backward, dy, x, w, rstd, dx, dw);
}

absl::Status LayerNormForward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                              Tensor& mean, Tensor& rstd) {
  LRKV_TRY(CheckRows("LayerNormForward", x, y, &w, rstd));
  LRKV_TRY(CheckShape("LayerNormForward", "bias", b, w.shape()));
  LRKV_TRY(CheckShape("LayerNormForward", "mean", mean, rstd.shape()));
  LRKV_TRY(CheckDType("LayerNormForward", "mean", mean, rstd.dtype()));
  return LRKV_RUN_KERNEL(x.device(), layer_norm_forward, x, w, b, eps, y, mean, rstd);
}

absl::Status LayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                               const Tensor& rstd, Tensor& dx, Tensor& dw, Tensor& db) {
  LRKV_TRY(CheckRows("LayerNormBackward", x, dy, &w, rstd));
  LRKV_TRY(CheckShape("LayerNormBackward", "dx", dx, x.shape()));
  LRKV_TRY(CheckShape("LayerNormBackward", "dw", dw, w.shape()));
  LRKV_TRY(CheckShape("LayerNormBackward", "db", db, w.shape()));
  LRKV_TRY(CheckAccumulatorDType("LayerNormBackward", "dw", dw, x.dtype()));
  LRKV_TRY(CheckAccumulatorDType("LayerNormBackward", "db", db, x.dtype()));
  return LRKV_RUN_KERNEL(x.device(), layer_norm_backward, dy, x, w, mean, rstd, dx, dw, db);
}

}  // namespace lrkv
