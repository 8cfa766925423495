#include "optim/grad_clip.h"

#include <cmath>

#include "runtime/ops/optimizer_ops.h"
#include "runtime/status.h"

namespace lrkv {

double ClipScale(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? max_norm / norm : 1.0;
}

absl::StatusOr<double> GlobalGradNorm(const ParameterSet& params) {
  double total = 0;
  for (const auto& p : params.all()) {
    double s = 0;
    LRKV_TRY(SumSquares(p->grad, &s));
    total += s;
  }
  return std::sqrt(total);
}

absl::StatusOr<double> ClipGradNorm(ParameterSet& params, double max_norm) {
  LRKV_TRY_ASSIGN(const double norm, GlobalGradNorm(params));
  const double scale = ClipScale(norm, max_norm);
  if (scale != 1.0) {
    for (const auto& p : params.all()) LRKV_TRY(Scale(p->grad, scale));
  }
  return norm;
}

}  // namespace lrkv
