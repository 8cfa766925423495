#include "runtime/ops/optimizer_ops.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status SumSquares(const Tensor& x, double* out) {
  LRKV_REQUIRE(x.defined(), "SumSquares: undefined tensor");
  return LRKV_RUN_KERNEL(x.device(), sum_squares, x, out);
}

absl::Status Scale(Tensor& x, double factor) {
  LRKV_REQUIRE(x.defined(), "Scale: undefined tensor");
  return LRKV_RUN_KERNEL(x.device(), scale, x, factor);
}

absl::Status AdamWUpdate(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  LRKV_TRY(CheckSameDeviceAndDType("AdamWUpdate", {&param, &grad, &m, &v}));
  LRKV_TRY(CheckShape("AdamWUpdate", "grad", grad, param.shape()));
  LRKV_TRY(CheckShape("AdamWUpdate", "m", m, param.shape()));
  LRKV_TRY(CheckShape("AdamWUpdate", "v", v, param.shape()));
  LRKV_REQUIRE(s.step >= 1, "AdamWUpdate: step must be >= 1");
  return LRKV_RUN_KERNEL(param.device(), adamw_update, param, grad, m, v, s);
}

}  // namespace lrkv
