// The peak FLOP/s that MFU is measured against, unless configured (train.peak_flops, or a device's
// datasheet figure by train.peak_device). Measured, every rank times GEMMs in the run's compute
// dtype on its device at the same moment, with the threads it trains with, and the job's peak is
// the sum, so ranks that share cores share the machine's peak.
#pragma once

#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace lrkv {

// FLOP/s of this process over back-to-back square GEMMs of `dtype` on `device` for about `seconds`
// (1024 on the host; 8192 on a GPU, where a smaller one would time its launches).
absl::StatusOr<double> MeasureGemmFlops(double seconds, Device device = Device::kCpu, DType dtype = DType::kF32);
// Sum over the ranks of `world` of MeasureGemmFlops, run at the same time.
absl::StatusOr<double> MeasureJobPeakFlops(Communicator& world, double seconds, Device device = Device::kCpu,
                                           DType dtype = DType::kF32);

}  // namespace lrkv
