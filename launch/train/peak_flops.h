// The peak FLOP/s that MFU is measured against. On CPU it is measured: every rank times fp32 GEMMs
// at the same moment, with the threads it trains with, and the job's peak is the sum, so ranks that
// share cores share the machine's peak. A configured value (train.peak_flops) replaces it, e.g. a
// GPU datasheet figure.
#pragma once

#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace lrkv {

// FLOP/s of this process over back-to-back 1024^3 fp32 GEMMs for about `seconds`.
absl::StatusOr<double> MeasureGemmFlops(double seconds);
// Sum over the ranks of `world` of MeasureGemmFlops, run at the same time.
absl::StatusOr<double> MeasureJobPeakFlops(Communicator& world, double seconds);

}  // namespace lrkv
