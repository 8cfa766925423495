// The device a rank trains on (train.device), made ready before anything is allocated on it.
#pragma once

#include <mpi.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/dtype.h"

namespace lrkv {

// CUDA: one GPU per rank, the one numbered by the rank's index among the ranks of its node; a node
// with fewer GPUs than ranks, or a build without the CUDA backend, is refused with the counts. The
// host devices (CPU, emulated) need nothing. Collective over `world` (it finds the node's ranks).
absl::Status PrepareTrainingDevice(Device device, MPI_Comm world);

// Bytes this rank's GPU has free now; FailedPrecondition on a host device or without CUDA.
absl::StatusOr<int64_t> FreeDeviceMemoryBytes(Device device);

// Waits until the work enqueued on the device is done (the CUDA stream; a host device runs each op
// to completion): a step's time then includes its optimizer update and the parameters' all-gather,
// which the host only enqueues.
absl::Status WaitForDevice(Device device);

}  // namespace lrkv
