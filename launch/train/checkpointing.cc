#include "launch/train/checkpointing.h"

#include <cstdio>
#include <filesystem>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "model/config.h"
#include "parallel/agreement.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

TensorBlock BlockOf(const std::string& name, const Parameter& p, int64_t begin, int64_t end, const Tensor& data,
                  bool store) {
  TensorBlock b;
  b.name = name;
  b.shape = p.spec.shape;
  b.block_shape = p.block.shape;
  b.dim = p.block.dim;
  b.offset = p.block.offset;
  b.flat_begin = begin, b.flat_end = end;
  b.data = data;
  b.store = store;
  return b;
}

// A `param/NAME` block per parameter of the master range this rank holds (the whole parameter, or
// under sharded masters its shard's range, saved and loaded as the optimizer's pieces are), stored
// where `store` says.
absl::StatusOr<std::vector<TensorBlock>> MasterBlocks(const ParameterSet& params,
                                                      const std::function<bool(const Parameter&)>& store) {
  std::vector<TensorBlock> blocks;
  for (const auto& p : params.all()) {
    if (p->master_begin == p->master_end) continue;  // sharded: none of it held here
    LRKV_TRY_ASSIGN(Tensor flat, MasterElements(*p, p->master_begin, p->master_end));
    blocks.push_back(BlockOf("param/" + p->spec.name, *p, p->master_begin, p->master_end, flat, store(*p)));
  }
  return blocks;
}

}  // namespace

std::string CheckpointName(int64_t step) { return absl::StrFormat("step_%08d", step); }

absl::StatusOr<std::vector<TensorBlock>> TrainingBlocks(Decoder& model, const AdamW& optimizer, ProcessMesh& mesh,
                                                        bool zero1) {
  // Each element is stored once: by its primary copy, on DP rank 0 unless sharded over DP.
  const bool sharded = model.params().masters_sharded();
  LRKV_TRY_ASSIGN(std::vector<TensorBlock> blocks, MasterBlocks(model.params(), [&](const Parameter& p) {
                    return model.IsPrimaryCopy(p) && (sharded || mesh.dp_index() == 0);
                  }));
  for (const AdamW::PieceState& s : optimizer.piece_states()) {
    const bool store = model.IsPrimaryCopy(*s.param) && (zero1 || mesh.dp_index() == 0);
    blocks.push_back(BlockOf("adam_m/" + s.param->spec.name, *s.param, s.begin, s.end, s.m, store));
    blocks.push_back(BlockOf("adam_v/" + s.param->spec.name, *s.param, s.begin, s.end, s.v, store));
  }
  return blocks;
}

absl::Status CheckCheckpointDirectory(const TrainConfig& t) {
  // Writability was shown by the directory lock (runtime/directory_lock.h), taken first.
  const std::string& dir = t.checkpoint_dir();
  std::error_code ec;
  if (t.resume() || t.overwrite_checkpoints()) return absl::OkStatus();
  // A new run would overwrite and prune another run's checkpoints: refuse unless asked.
  const std::vector<std::string> names = ListCheckpoints(dir);
  const bool pointer = std::filesystem::exists(std::filesystem::symlink_status(dir + "/latest", ec));
  if (names.empty() && !pointer) return absl::OkStatus();
  std::string held = names.empty() ? "a 'latest' pointer" : absl::StrCat(names.size(), " checkpoint(s): ");
  for (size_t i = 0; i < names.size() && i < 4; ++i) absl::StrAppend(&held, i ? ", " : "", names[i]);
  if (names.size() > 4) absl::StrAppend(&held, ", ..., ", names.back());
  return absl::FailedPreconditionError(absl::StrCat(
      "checkpoint directory ", dir, " already holds another run's ", held,
      ": pass --resume to continue it, --overwrite_checkpoints to replace it, or choose another --checkpoint_dir"));
}

absl::Status RemoveOldCheckpoints(const TrainConfig& t) {
  if (t.checkpoint_dir().empty() || t.resume() || !t.overwrite_checkpoints()) return absl::OkStatus();
  const std::vector<std::string> names = ListCheckpoints(t.checkpoint_dir());
  std::error_code ec;
  for (const std::string& n : names) std::filesystem::remove_all(t.checkpoint_dir() + "/" + n, ec);
  std::filesystem::remove(t.checkpoint_dir() + "/latest", ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot remove the old checkpoints in ", t.checkpoint_dir(), ": ", ec.message()));
  if (!names.empty()) {
    std::printf("  --overwrite_checkpoints: removed %zu checkpoint(s) of the previous run from %s\n", names.size(),
                t.checkpoint_dir().c_str());
  }
  return absl::OkStatus();
}

absl::StatusOr<Progress> Resume(const RunConfig& config, uint32_t tokenizer_fingerprint, Decoder& model,
                                AdamW& optimizer, ProcessMesh& mesh) {
  const std::string& dir = config.train().checkpoint_dir();
  std::string note;
  absl::StatusOr<std::string> path = LatestCheckpoint(dir, &note);
  if (absl::IsNotFound(path.status())) return Progress{};
  // Every rank reads and checks the manifest; all agree before any tensor is touched.
  CheckpointManifest manifest;
  TrainState state;
  absl::Status status = [&]() -> absl::Status {
    LRKV_TRY(path.status());
    LRKV_TRY_ASSIGN(manifest, ReadManifest(*path));
    LRKV_TRY_ASSIGN(state, CompatibleState(manifest, *path, config));
    return ContinuesRun(state, *path, config, tokenizer_fingerprint);
  }();
  LRKV_TRY(AgreeOnStatus(mesh.world(), status));
  LRKV_TRY_ASSIGN(std::vector<TensorBlock> blocks,
                  TrainingBlocks(model, optimizer, mesh, config.parallel().zero1()));
  LRKV_TRY_ASSIGN(const int64_t bytes, LoadCheckpoint(mesh.world(), *path, manifest, blocks));
  LRKV_TRY(model.params().RefreshValues());  // the bf16 copies of the loaded masters
  optimizer.set_steps_taken(state.optimizer_steps());
  Progress p;
  p.step = state.step(), p.tokens = state.tokens(), p.flops_cumulative = state.flops_cumulative();
  p.last_loss = state.last_loss(), p.metrics_record = state.metrics_record();
  p.tokenizer_fingerprint = state.tokenizer_fingerprint();
  p.loaded_bytes = bytes, p.checkpoint = *path, p.note = note;
  return p;
}

absl::StatusOr<int64_t> SaveTrainingCheckpoint(const RunConfig& config, const Progress& progress, Decoder& model,
                                               const AdamW& optimizer, ProcessMesh& mesh) {
  TrainState state;
  state.set_step(progress.step);
  state.set_tokens(progress.tokens);
  state.set_flops_cumulative(progress.flops_cumulative);
  state.set_optimizer_steps(optimizer.steps_taken());
  state.set_last_loss(progress.last_loss);
  state.set_metrics_record(progress.metrics_record);
  state.set_tokenizer_fingerprint(progress.tokenizer_fingerprint);
  google::protobuf::TextFormat::PrintToString(config, state.mutable_config_text());
  state.set_layout(absl::StrCat(mesh.layout().ToString(), config.parallel().zero1() ? " + ZeRO-1" : ""));
  LRKV_TRY_ASSIGN(const std::vector<TensorBlock> blocks,
                  TrainingBlocks(model, optimizer, mesh, config.parallel().zero1()));
  CheckpointOptions options;
  options.keep_last = config.train().keep_checkpoints();
  return SaveCheckpoint(mesh.world(), config.train().checkpoint_dir(), CheckpointName(progress.step), blocks,
                        state.SerializeAsString(), TrainState::descriptor()->full_name(), options);
}

absl::StatusOr<SavedCheckpoint> OpenCheckpoint(const std::string& dir) {
  SavedCheckpoint c;
  c.path = dir;
  if (!std::filesystem::exists(dir + "/manifest.pb")) {
    LRKV_TRY_ASSIGN(c.path, LatestCheckpoint(dir));
  }
  LRKV_TRY_ASSIGN(c.manifest, ReadManifest(c.path));
  LRKV_REQUIRE_CODE(absl::StatusCode::kDataLoss,
                    c.manifest.state_type() == TrainState::descriptor()->full_name() &&
                        c.state.ParseFromString(c.manifest.state()),
                    "checkpoint ", c.path, " holds no lrkv training state (state type '", c.manifest.state_type(),
                    "')");
  LRKV_TRY_ASSIGN(c.config, ParseRunConfig(c.state.config_text(), absl::StrCat(c.path, " saved config")));
  return c;
}

absl::StatusOr<int64_t> LoadParameters(Communicator& world, const SavedCheckpoint& checkpoint, Decoder& model) {
  LRKV_TRY_ASSIGN(std::vector<TensorBlock> blocks, MasterBlocks(model.params(), [](const Parameter&) { return false; }));
  LRKV_TRY_ASSIGN(const int64_t loaded, LoadCheckpoint(world, checkpoint.path, checkpoint.manifest, blocks));
  LRKV_TRY(model.params().RefreshValues());
  return loaded;
}

absl::StatusOr<TrainState> CompatibleState(const CheckpointManifest& manifest, const std::string& path,
                                           const RunConfig& config) {
  TrainState state;
  LRKV_REQUIRE_CODE(absl::StatusCode::kDataLoss,
                    manifest.state_type() == TrainState::descriptor()->full_name() &&
                        state.ParseFromString(manifest.state()),
                    "checkpoint ", path, " holds no lrkv training state (state type '", manifest.state_type(), "')");
  RunConfig saved;
  LRKV_REQUIRE_CODE(absl::StatusCode::kDataLoss,
                    google::protobuf::TextFormat::ParseFromString(state.config_text(), &saved),
                    "checkpoint ", path, ": its saved config cannot be parsed");
  std::string diff;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  if (!differ.Compare(saved.model(), config.model())) {
    while (!diff.empty() && diff.back() == '\n') diff.pop_back();
    return absl::InvalidArgumentError(absl::StrCat("checkpoint ", path, " was saved from another model; differences ",
                                                   "(checkpoint -> this run): ",
                                                   absl::StrReplaceAll(diff, {{"\n", "; "}})));
  }
  // A checkpoint that has consumed no data yet (step 0, e.g. from `lrkv import`) fits any stream.
  LRKV_REQUIRE(state.step() == 0 || (saved.train().seed() == config.train().seed() &&
                                     saved.train().global_batch() == config.train().global_batch()),
               "checkpoint ", path, " was trained with train.seed ", saved.train().seed(), " and train.global_batch ",
               saved.train().global_batch(), "; this run has ", config.train().seed(), " and ",
               config.train().global_batch(), ", so its data stream would not continue where it stopped");
  return state;
}

absl::Status ContinuesRun(const TrainState& state, const std::string& path, const RunConfig& config,
                          uint32_t tokenizer_fingerprint) {
  // 0 on either side is unknown (data or checkpoints written before the fingerprint existed).
  LRKV_REQUIRE(state.tokenizer_fingerprint() == 0 || tokenizer_fingerprint == 0 ||
                   state.tokenizer_fingerprint() == tokenizer_fingerprint,
               "checkpoint ", path, " was trained on data of another tokenizer (fingerprint ",
               absl::StrFormat("%08x", state.tokenizer_fingerprint()), ", this run's ", config.train().data_dir(),
               " has ", absl::StrFormat("%08x", tokenizer_fingerprint),
               "): the same token ids would mean other text; resume with the data the run was trained on");
  LRKV_REQUIRE(state.step() < config.train().steps(), "checkpoint ", path, " is at step ", state.step(),
               " and train.steps is ", config.train().steps(),
               ": nothing left to train; raise --steps to continue the run");
  return absl::OkStatus();
}

}  // namespace lrkv
