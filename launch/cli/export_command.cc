// lrkv export --checkpoint=DIR --out=FILE.safetensors
// One consolidated safetensors file of a checkpoint's parameters (launch/formats/model_weights.h), whatever
// layout saved it, and FILE.config.json (the ModelConfig as JSON) next to it. DIR is a checkpoint
// (DIR/manifest.pb) or a checkpoint directory, whose latest checkpoint is exported.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/formats/model_weights.h"
#include "launch/cli/one_process.h"
#include "launch/formats/safetensors.h"
#include "launch/train/checkpointing.h"
#include "model/config.h"
#include "parallel/sharded_checkpoint.h"
#include "runtime/durable_file.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] = "lrkv export --checkpoint=DIR --out=FILE.safetensors";
constexpr char kParamPrefix[] = "param/";
constexpr char kSuffix[] = ".safetensors";

}  // namespace

absl::Status RunExportCommand(const std::vector<std::string>& args) {
  LRKV_TRY_ASSIGN(const NamedArgs named, ParseNamedArgs(args, {"checkpoint", "out"}, kUsage));
  std::string dir, out;
  for (const auto& [name, value] : named) (name == "checkpoint" ? dir : out) = value;
  LRKV_REQUIRE(!dir.empty() && !out.empty(), "export needs --checkpoint and --out\nusage: ", kUsage);
  LRKV_REQUIRE(absl::EndsWith(out, kSuffix) && out.size() > sizeof(kSuffix) - 1, "--out=", out,
               " must name a .safetensors file (its config goes next to it as NAME.config.json)");
  const std::string config_out = out.substr(0, out.size() - (sizeof(kSuffix) - 1)) + ".config.json";

  LRKV_TRY_ASSIGN(const SavedCheckpoint checkpoint, OpenCheckpoint(dir));
  const std::string& path = checkpoint.path;
  const CheckpointManifest& manifest = checkpoint.manifest;
  const TrainState& state = checkpoint.state;
  const RunConfig& config = checkpoint.config;
  LRKV_TRY_ASSIGN(const std::string config_json, ModelConfigJson(config.model()));

  // The parameters, in the checkpoint's order (the model's), under their own names.
  std::vector<SafetensorsTensorInfo> infos;
  std::vector<DType> dtypes;
  int64_t elements = 0;
  for (const TensorRecord& r : manifest.tensors()) {
    if (!absl::StartsWith(r.name(), kParamPrefix)) continue;
    SafetensorsTensorInfo info;
    info.name = r.name().substr(sizeof(kParamPrefix) - 1);
    LRKV_TRY_ASSIGN(const DType dtype, RecordDType(r));
    info.dtype = SafetensorsDTypeName(dtype);
    info.shape.assign(r.shape().begin(), r.shape().end());
    elements += NumElements(info.shape);
    infos.push_back(std::move(info));
    dtypes.push_back(dtype);
  }
  LRKV_REQUIRE_CODE(absl::StatusCode::kDataLoss, !infos.empty(), "checkpoint ", path, " holds no parameters (",
                    kParamPrefix, "* tensors)");
  const SafetensorsMetadata metadata = {{kWeightsFormatKey, "lrkv"},
                                        {kWeightsRunConfigKey, state.config_text()},
                                        {kWeightsStepKey, std::to_string(state.step())},
                                        {kWeightsSourceKey, path}};

  int64_t bytes = 0;
  LRKV_TRY(RunInOneProcess("export", [&](MpiCommunicator& world) -> absl::Status {
    LRKV_TRY_ASSIGN(SafetensorsWriter writer, SafetensorsWriter::Create(out, infos, metadata));
    // One tensor at a time, each gathered whole from whatever pieces the saving layout left.
    for (size_t i = 0; i < infos.size(); ++i) {
      std::vector<TensorBlock> blocks(1);
      TensorBlock& b = blocks[0];
      b.name = kParamPrefix + infos[i].name;
      b.shape = b.block_shape = infos[i].shape;
      b.flat_end = NumElements(b.shape);
      LRKV_TRY_ASSIGN(b.data, Tensor::Empty({b.flat_end}, dtypes[i]));
      LRKV_TRY(LoadCheckpoint(world, path, manifest, blocks).status());
      LRKV_TRY(writer.Append(b.data));
    }
    LRKV_TRY(writer.Finish());
    bytes = writer.bytes();
    return absl::OkStatus();
  }));
  LRKV_TRY(WriteFileDurably(config_out, config_json));
  std::printf("exported %s (step %lld): %zu tensors, %.3fM parameters -> %s (%.2f MB); model config -> %s\n",
              path.c_str(), static_cast<long long>(state.step()), infos.size(), elements / 1e6, out.c_str(),
              bytes / 1e6, config_out.c_str());
  return absl::OkStatus();
}

}  // namespace lrkv
