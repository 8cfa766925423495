// Validation during training, for any layout.
#pragma once

#include "absl/status/statusor.h"
#include "data/sampler.h"
#include "model/config.pb.h"
#include "model/decoder.h"
#include "parallel/mesh.h"

namespace lrkv {

// The loss sums of a pipeline count once per pipeline: on its last stage, TP rank 0.
bool ReportsLoss(ProcessMesh& mesh);

// Mean validation loss over the first eval_batches * global_batch windows of the validation stream
// (fewer when the stream is shorter): the same tokens at every evaluation and for every layout,
// split over the DP ranks and run through the pipeline (forward only) in micro-batches.
absl::StatusOr<double> Evaluate(Decoder& model, const data::EvalSampler& val, const TrainConfig& t, ProcessMesh& mesh);

}  // namespace lrkv
