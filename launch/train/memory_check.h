// The start-up check that a job fits the memory of its nodes: every rank's peak as the memory model
// predicts it (model/memory_model.h), summed over the ranks of each node, against what the node has
// available now. A job that would not fit stops on every rank before it allocates, with the
// prediction and what would fit in the message, never by the OOM killer half-way through;
// train.ignore_memory_check starts it anyway.
#pragma once

#include <cstdint>

#include <mpi.h>

#include "absl/status/status.h"
#include "model/config.pb.h"

namespace lrkv {

// Memory this process can still get: the machine's MemAvailable, or what its cgroup's limit leaves
// when that is less.
int64_t AvailableMemoryBytes();

// Fails when the ranks of `world` on one node are predicted to need more than that node has
// available. `stage`: this rank's pipeline stage. Collective over `world`.
absl::Status CheckMemoryFits(const RunConfig& config, int stage, MPI_Comm world);

}  // namespace lrkv
