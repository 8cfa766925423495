#include "launch/cli/inference_model.h"

#include <filesystem>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "launch/formats/model_weights.h"
#include "launch/formats/safetensors.h"
#include "launch/train/checkpointing.h"
#include "model/config.h"
#include "parallel/agreement.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<InferenceModel> LoadInferenceModel(MpiCommunicator& world, const InferenceSource& from, int tp,
                                                  bool decoding) {
  InferenceModel m;
  std::optional<SavedCheckpoint> checkpoint;
  std::optional<SafetensorsReader> file;
  absl::Status status = [&]() -> absl::Status {
    LRKV_REQUIRE(from.checkpoint.empty() != from.safetensors.empty(),
                 "give exactly one of --checkpoint=DIR and --safetensors=FILE");
    if (!from.checkpoint.empty()) {
      LRKV_TRY_ASSIGN(checkpoint, OpenCheckpoint(from.checkpoint));
      m.config = checkpoint->config, m.source = checkpoint->path, m.step = checkpoint->state.step();
    } else {
      LRKV_TRY_ASSIGN(file, SafetensorsReader::Open(from.safetensors));
      LRKV_TRY_ASSIGN(m.config, RunConfigFromMetadata(*file));
      m.source = from.safetensors;
      const auto step = file->metadata().find(kWeightsStepKey);
      if (step != file->metadata().end()) m.step = std::stoll(step->second);
    }
    FillDefaults(m.config);
    LRKV_TRY(ValidateModelConfig(m.config.model()));
    LRKV_REQUIRE(tp >= 1 && world.size() % tp == 0, "--tp=", tp, " does not divide the ", world.size(), " ranks");
    return ValidateLayout({world.size() / tp, 1, tp}, world.size());
  }();
  LRKV_TRY(AgreeOnStatus(world, status));
  LRKV_TRY_ASSIGN(m.mesh, ProcessMesh::Create(world, {world.size() / tp, 1, tp}));
  ModelPlacement placement;
  placement.tp_rank = {m.mesh->tp_index(), tp, decoding};
  placement.tp = tp > 1 ? &m.mesh->tp() : nullptr;
  status = [&]() -> absl::Status {
    LRKV_TRY_ASSIGN(m.model, Decoder::Create(m.config.model(), placement));
    if (file) return ReadModelParameters(*file, m.model->params(), "the model of its metadata", decoding);
    return absl::OkStatus();
  }();
  LRKV_TRY(AgreeOnStatus(world, status));
  if (checkpoint) LRKV_TRY(LoadParameters(world, *checkpoint, *m.model).status());
  return m;
}

absl::StatusOr<std::string> RunTokenizerFile(const RunConfig& config, const std::string& data_dir) {
  const std::string dir = data_dir.empty() ? config.train().data_dir() : data_dir;
  LRKV_REQUIRE(!dir.empty(), "the run names no data directory: pass --data_dir=DIR (where prepare-data wrote it)");
  const std::string file = dir + "/tokenizer.model";
  LRKV_REQUIRE_CODE(absl::StatusCode::kNotFound, std::filesystem::exists(file), "no tokenizer at ", file,
                    ": pass --data_dir=DIR, the directory prepare-data wrote for this model");
  return file;
}

}  // namespace lrkv
