#include "launch/train/nonfinite_steps.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "parallel/agreement.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status RefuseNonFiniteStep(const AdamW& optimizer, MpiCommunicator& world, const TrainConfig& t, int64_t step,
                                 double grad_norm, int skipped) {
  LRKV_TRY_ASSIGN(const std::string name, optimizer.FirstNonFiniteGradient());
  const absl::Status where = AgreeOnStatus(
      world, name.empty() ? absl::OkStatus() : absl::DataLossError(absl::StrCat("parameter ", name)));
  const std::string what = absl::StrCat("step ", step, ": non-finite gradients (grad_norm ", grad_norm,
                                        "), first in ", where.message());
  if (t.on_nonfinite() == STOP) {
    return absl::DataLossError(absl::StrCat(what, "; stopped (train.on_nonfinite=SKIP skips such steps instead)"));
  }
  if (skipped > t.max_skipped_steps()) {
    return absl::DataLossError(absl::StrCat(what, "; ", skipped, " steps skipped, more than train.max_skipped_steps (",
                                            t.max_skipped_steps(), ")"));
  }
  if (world.rank() == 0) {
    std::printf("warning: %s; step skipped (%d of at most %d)\n", what.c_str(), skipped, t.max_skipped_steps());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

absl::Status PoisonFirstGradient(ParameterSet& params) {
  Tensor& g = params.all().front()->grad;  // fp32 (the masters' dtype), on the run's device
  LRKV_TRY_ASSIGN(Tensor first, g.View({g.numel()}));
  LRKV_TRY_ASSIGN(first, first.Slice(0, 1));
  LRKV_TRY_ASSIGN(Tensor nan, Tensor::Empty({1}, g.dtype()));
  nan.data<float>()[0] = NAN;
  return first.CopyFrom(nan);
}

}  // namespace lrkv
