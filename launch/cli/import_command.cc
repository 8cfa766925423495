// lrkv import --safetensors=FILE --config=CONFIG.textproto --out=CHECKPOINT_DIR [--model.FIELD=V ...]
//             [--train.FIELD=V ...]
// A checkpoint of step 0 from a weights file (launch/formats/model_weights.h): the parameters of the file,
// checked against the model the config builds, zero AdamW moments, and the config in its
// TrainState, so that `lrkv train --config=CONFIG --checkpoint_dir=CHECKPOINT_DIR --resume`
// trains (or, with --steps, evaluates) from those weights at any layout.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "launch/train/checkpointing.h"
#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/formats/model_weights.h"
#include "launch/cli/one_process.h"
#include "launch/formats/safetensors.h"
#include "model/config.h"
#include "model/decoder.h"
#include "optim/adamw.h"
#include "parallel/mesh.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] =
    "lrkv import --safetensors=FILE --config=CONFIG.textproto --out=CHECKPOINT_DIR [--model.FIELD=VALUE ...] "
    "[--train.FIELD=VALUE ...]";

std::string ModelSummary(const ModelConfig& m) {
  return absl::StrCat(AttentionKindName(m.attention()), ", ", m.n_layers(), " layers, d_model ", m.d_model(), ", ",
                      m.n_heads(), " heads, vocab ", m.vocab_size(),
                      m.tie_embeddings() ? ", tied embeddings" : ", untied embeddings");
}

}  // namespace

absl::Status RunImportCommand(const std::vector<std::string>& args) {
  // --model.X=V / --train.X=V / --parallel.X=V are config fields; the rest are this command's.
  std::vector<std::string> own;
  std::vector<std::pair<std::string, std::string>> overrides;
  for (const std::string& arg : args) {
    const size_t eq = arg.find('=');
    if ((absl::StartsWith(arg, "--model.") || absl::StartsWith(arg, "--train.") ||
         absl::StartsWith(arg, "--parallel.")) &&
        eq != std::string::npos) {
      overrides.emplace_back(arg.substr(2, eq - 2), arg.substr(eq + 1));
    } else {
      own.push_back(arg);
    }
  }
  LRKV_TRY_ASSIGN(const NamedArgs named, ParseNamedArgs(own, {"safetensors", "config", "out"}, kUsage));
  std::string file, config_path, out;
  for (const auto& [name, value] : named) (name == "safetensors" ? file : name == "config" ? config_path : out) = value;
  LRKV_REQUIRE(!file.empty() && !config_path.empty() && !out.empty(),
               "import needs --safetensors, --config and --out\nusage: ", kUsage);

  // The config as `lrkv train` would see it, so that the checkpoint's model compares equal on resume.
  LRKV_TRY_ASSIGN(RunConfig config, LoadRunConfig(config_path));
  for (const auto& [field, value] : overrides) LRKV_TRY(ApplyOverride(config, field, value));
  FillDefaults(config);
  LRKV_TRY(ValidateModelConfig(config.model()));
  config.mutable_train()->set_checkpoint_dir(out);
  // A second step_00000000 beside later checkpoints would become `latest` and hide them.
  const absl::StatusOr<std::string> existing = LatestCheckpoint(out);
  LRKV_REQUIRE_CODE(absl::StatusCode::kAlreadyExists, !existing.ok(), out, " already holds checkpoints (latest ",
                    existing.value_or(""), "); import into a new or empty directory");

  LRKV_TRY_ASSIGN(const SafetensorsReader reader, SafetensorsReader::Open(file));
  LRKV_TRY_ASSIGN(std::unique_ptr<Decoder> model, Decoder::Create(config.model()));
  LRKV_TRY(ReadModelParameters(reader, model->params(),
                               absl::StrCat("the model of ", config_path, " (", ModelSummary(config.model()), ")")));
  LRKV_TRY_ASSIGN(const AdamW optimizer, AdamW::Create(WholeParameters(model->params()), config.train()));

  int64_t bytes = 0;
  LRKV_TRY(RunInOneProcess("import", [&](MpiCommunicator& world) -> absl::Status {
    LRKV_TRY_ASSIGN(std::unique_ptr<ProcessMesh> mesh, ProcessMesh::Create(world, Layout{}));
    LRKV_TRY_ASSIGN(bytes, SaveTrainingCheckpoint(config, Progress{}, *model, optimizer, *mesh));
    return absl::OkStatus();
  }));
  std::printf("imported %s (%zu tensors, %.3fM parameters; %s) -> %s/%s (%.2f MB, step 0, zero AdamW moments)\n",
              file.c_str(), reader.tensors().size(), model->params().NumElements() / 1e6,
              ModelSummary(config.model()).c_str(), out.c_str(), CheckpointName(0).c_str(), bytes / 1e6);
  return absl::OkStatus();
}

}  // namespace lrkv
