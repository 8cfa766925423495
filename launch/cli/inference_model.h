// The model `lrkv generate` and `lrkv eval` run: from a checkpoint (saved at any layout) or an
// exported safetensors file, built for this launch's layout (tensor parallel over --tp ranks, no
// pipeline, the remaining ranks data parallel) and loaded through the checkpoint resharding.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/config.pb.h"
#include "model/decoder.h"
#include "parallel/mesh.h"
#include "parallel/mpi_communicator.h"

namespace lrkv {

struct InferenceSource {
  std::string checkpoint;   // a checkpoint, or a checkpoint directory (its latest)
  std::string safetensors;  // or a file `lrkv export` wrote
};

struct InferenceModel {
  RunConfig config;     // the run's, defaults filled
  std::string source;   // the checkpoint's path or the file
  int64_t step = 0;     // training steps behind the weights
  std::unique_ptr<ProcessMesh> mesh;
  std::unique_ptr<Decoder> model;
};

// Collective over `world`; every rank agrees on failure. `decoding` builds the decoding partition
// (model/parameter.h TpRank::decoding).
absl::StatusOr<InferenceModel> LoadInferenceModel(MpiCommunicator& world, const InferenceSource& from, int tp,
                                                  bool decoding);

// The tokenizer of the run's data: DIR/tokenizer.model, DIR = `data_dir` or the run's
// train.data_dir.
absl::StatusOr<std::string> RunTokenizerFile(const RunConfig& config, const std::string& data_dir);

}  // namespace lrkv
