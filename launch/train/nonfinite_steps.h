// Steps whose gradients are not finite (a non-finite loss makes every gradient so) are never
// applied: train.on_nonfinite STOP ends the run, SKIP drops the step, at most
// train.max_skipped_steps times.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "model/config.pb.h"
#include "model/parameter.h"
#include "optim/adamw.h"
#include "parallel/mpi_communicator.h"

namespace lrkv {

// For step `step` (1-based) whose global gradient norm is not finite: names the first parameter
// with a non-finite gradient (agreed over the ranks); fails under STOP or when `skipped` (this one
// included) exceeds train.max_skipped_steps; otherwise warns (rank 0) and returns OK: the caller
// skips the update.
absl::Status RefuseNonFiniteStep(const AdamW& optimizer, MpiCommunicator& world, const TrainConfig& t, int64_t step,
                                 double grad_norm, int skipped);

// The LRKV_TEST_NAN_GRAD test hook (runtime/test_hooks.h): a NaN in the first gradient element.
absl::Status PoisonFirstGradient(ParameterSet& params);

}  // namespace lrkv
