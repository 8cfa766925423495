// The training loop over the ranks of `world` in a DP x PP x TP layout: data, this rank's part of
// the model, the pipeline schedule over micro-batches (gradient accumulation when pp = 1), the
// gradient reductions (TP partial sums, tied embeddings, DP average or ZeRO-1), AdamW, learning-rate
// schedule, clipping, periodic validation, progress on the terminal and metrics as JSONL (both from
// world rank 0).
#pragma once

#include "absl/status/statusor.h"
#include "model/config.pb.h"
#include "parallel/mpi_communicator.h"

namespace lrkv {

struct TrainSummary {
  int64_t steps = 0;
  int64_t tokens = 0;
  double final_loss = 0;      // training loss of the last step
  double final_val_loss = 0;  // validation loss after the last step
  double seconds = 0;
};

// `config` must have passed FillDefaults; it is validated here before any work.
absl::StatusOr<TrainSummary> Train(const RunConfig& config, MpiCommunicator& world);


}  // namespace lrkv
