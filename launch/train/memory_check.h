// The start-up check that a job fits the memory of its machine, so that a config that cannot fit
// (model.n_layers=100000) is refused at once, naming the figures, instead of allocating for
// minutes and failing on some 256 KiB block. The estimate is a floor, not a prediction: the
// parameter state is exact, activations are counted coarsely (what backward keeps per layer), so
// a job refused here could never have run.
#pragma once

#include <cstdint>

#include <mpi.h>

#include "absl/status/status.h"
#include "model/config.pb.h"

namespace lrkv {

struct RankMemory {
  // In doubles: a config far too large must not overflow on its way to being refused.
  double state_bytes = 0;       // values, gradients and AdamW moments (fp32) of the rank's parameters
  double activation_bytes = 0;  // what backward keeps for the micro-batches in flight
  double total() const { return state_bytes + activation_bytes; }
};

// The largest rank's floor, for a config that passed validation.
RankMemory EstimateRankMemory(const RunConfig& config);

// Physical memory this process may use: the machine's, or its cgroup's limit when lower.
int64_t UsableMemoryBytes();

// Fails when the ranks of `world` on one node need more than that node's usable memory.
// Collective over `world` (counts the ranks per node).
absl::Status CheckMemoryFits(const RunConfig& config, MPI_Comm world);

}  // namespace lrkv
