// Validation during training, for any layout.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "data/sampler.h"
#include "model/config.pb.h"
#include "model/decoder.h"
#include "parallel/mesh.h"

namespace lrkv {

// A split's token shard (data/token_shard.h), checked against the model's vocabulary and against the
// tokenizer of the run's other shards (`*fingerprint`: 0 until the first shard read sets it).
absl::StatusOr<data::TokenBuffer> LoadTokenShard(const std::string& path, int vocab_size, uint32_t* fingerprint);

// The loss sums of a pipeline count once per pipeline: on its last stage, TP rank 0.
bool ReportsLoss(ProcessMesh& mesh);

// Mean validation loss over the first eval_batches * global_batch windows of the validation stream
// (fewer when the stream is shorter): the same tokens at every evaluation and for every layout,
// split over the DP ranks and run through the pipeline (forward only) in micro-batches.
absl::StatusOr<double> Evaluate(Decoder& model, const data::EvalSampler& val, const TrainConfig& t, ProcessMesh& mesh);

}  // namespace lrkv
