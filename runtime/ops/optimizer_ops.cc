#include "runtime/ops/optimizer_ops.h"

#include "runtime/ops/check.h"
#include "runtime/ops/dispatch.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status SumSquares(const Tensor& x, double* out) {
  LRKV_REQUIRE(x.defined(), "SumSquares: undefined tensor");
  LRKV_DISPATCH(x.device(), SumSquares, x, out);
}

absl::Status Scale(Tensor& x, double factor) {
  LRKV_REQUIRE(x.defined(), "Scale: undefined tensor");
  LRKV_DISPATCH(x.device(), Scale, x, factor);
}

absl::Status AdamWUpdate(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  LRKV_TRY(CheckSameDeviceAndDType("AdamWUpdate", {&param, &grad, &m, &v}));
  LRKV_TRY(CheckShape("AdamWUpdate", "grad", grad, param.shape()));
  LRKV_TRY(CheckShape("AdamWUpdate", "m", m, param.shape()));
  LRKV_TRY(CheckShape("AdamWUpdate", "v", v, param.shape()));
  LRKV_REQUIRE(s.step >= 1, "AdamWUpdate: step must be >= 1");
  LRKV_DISPATCH(param.device(), AdamWUpdate, param, grad, m, v, s);
}

}  // namespace lrkv
