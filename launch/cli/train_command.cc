// lrkv train --config=FILE [--steps=N] [--seed=S] [--data_dir=D] [--out_dir=O] [--metrics_out=F]
//            [--dp=N --tp=N --pp=N --zero1 --micro_batches=M --print_layout]
//            [--checkpoint_dir=D --save_every=N --resume | --overwrite_checkpoints] [--peak=DEVICE] [--device=cpu|cuda|emulated]
//            [--model.FIELD=V ...] [--train.FIELD=V ...] [--parallel.FIELD=V ...]
#include <cstdint>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/strings/ascii.h"
#include "launch/cli/commands.h"
#include "launch/train/trainer.h"
#include "model/config.h"
#include "parallel/agreement.h"
#include "runtime/status.h"

ABSL_FLAG(std::string, config, "", "train: run config, text-format RunConfig (configs/*.textproto)");
// Shorthands for config fields: the value goes to the field as written, so it is parsed and
// range-checked like the field itself (--steps=-5 is refused, not ignored).
ABSL_FLAG(std::optional<std::string>, steps, std::nullopt, "train: train.steps");
ABSL_FLAG(std::optional<std::string>, seed, std::nullopt, "train: train.seed (init and data order)");
ABSL_FLAG(std::optional<std::string>, data_dir, std::nullopt, "train: train.data_dir (output of prepare-data)");
ABSL_FLAG(std::optional<std::string>, out_dir, std::nullopt, "train: train.out_dir (metrics.jsonl, summary.json)");
ABSL_FLAG(std::optional<std::string>, metrics_out, std::nullopt,
          "train: train.metrics_out (default OUT_DIR/metrics.jsonl)");
ABSL_FLAG(std::optional<std::string>, dp, std::nullopt, "train: parallel.dp, data-parallel ranks; world = dp x pp x tp");
ABSL_FLAG(std::optional<std::string>, tp, std::nullopt,
          "train: parallel.tp, tensor-parallel ranks: heads, MLP columns and vocabulary split");
ABSL_FLAG(std::optional<std::string>, pp, std::nullopt,
          "train: parallel.pp, pipeline stages: layers split; --micro_batches per pipeline");
ABSL_FLAG(std::optional<std::string>, checkpoint_dir, std::nullopt,
          "train: train.checkpoint_dir, the directory of sharded checkpoints");
ABSL_FLAG(std::optional<std::string>, save_every, std::nullopt,
          "train: train.save_every, a checkpoint every N steps and at the end");
ABSL_FLAG(std::optional<std::string>, peak, std::nullopt,
          "train: train.peak_device, each rank's peak for MFU: a device (h100, h200, a100, ...) or FLOP/s");
ABSL_FLAG(std::optional<std::string>, device, std::nullopt,
          "train: train.device, where each rank trains: cpu, cuda (one GPU per rank: its local rank's) or "
          "emulated (host memory under a GPU's rules, for tests)");
ABSL_FLAG(bool, zero1, false, "train: shard optimizer state across data-parallel ranks (parallel.zero1)");
ABSL_FLAG(bool, resume, false,
          "train: continue from the latest checkpoint in --checkpoint_dir, at this launch's layout (train.resume)");
ABSL_FLAG(bool, overwrite_checkpoints, false,
          "train: start a new run in a --checkpoint_dir that holds another run's checkpoints, replacing them "
          "(train.overwrite_checkpoints)");
ABSL_FLAG(bool, print_layout, false, "train: print every rank's parameters (name, local shape) before training");
ABSL_FLAG(std::optional<int>, micro_batches, std::nullopt,
          "train: micro-batches per step on each pipeline (DP rank); sets train.micro_batch = global_batch / (dp x "
          "micro_batches)");

namespace lrkv {

namespace {

// The run's config: the file, the flags, the overrides, the defaults. The same on every rank.
absl::StatusOr<RunConfig> ConfigFromCommandLine(const ConfigOverrides& config_overrides) {
  const std::string path = absl::GetFlag(FLAGS_config);
  LRKV_REQUIRE(!path.empty(), "train needs --config=FILE (see configs/)");
  LRKV_TRY_ASSIGN(RunConfig config, LoadRunConfig(path));
  // The named flags are shorthands for config fields; they apply before the generic overrides.
  const std::pair<const absl::Flag<std::optional<std::string>>*, const char*> shorthands[] = {
      {&FLAGS_steps, "train.steps"},           {&FLAGS_seed, "train.seed"},
      {&FLAGS_data_dir, "train.data_dir"},     {&FLAGS_out_dir, "train.out_dir"},
      {&FLAGS_metrics_out, "train.metrics_out"}, {&FLAGS_dp, "parallel.dp"},
      {&FLAGS_tp, "parallel.tp"},              {&FLAGS_pp, "parallel.pp"},
      {&FLAGS_checkpoint_dir, "train.checkpoint_dir"}, {&FLAGS_save_every, "train.save_every"},
      {&FLAGS_peak, "train.peak_device"}};
  ConfigOverrides overrides;
  for (const auto& [flag, field] : shorthands) {
    if (const std::optional<std::string> v = absl::GetFlag(*flag); v.has_value()) overrides.emplace_back(field, *v);
  }
  // Devices are written in lower case on the command line, as the enum's names in upper case.
  if (const std::optional<std::string> v = absl::GetFlag(FLAGS_device); v.has_value()) {
    overrides.emplace_back("train.device", absl::AsciiStrToUpper(*v));
  }
  const std::pair<const absl::Flag<bool>*, const char*> switches[] = {
      {&FLAGS_zero1, "parallel.zero1"}, {&FLAGS_print_layout, "train.print_layout"},
      {&FLAGS_resume, "train.resume"}, {&FLAGS_overwrite_checkpoints, "train.overwrite_checkpoints"}};
  for (const auto& [flag, field] : switches) {
    if (absl::GetFlag(*flag)) overrides.emplace_back(field, "true");
  }
  overrides.insert(overrides.end(), config_overrides.begin(), config_overrides.end());
  for (const auto& [field, value] : overrides) LRKV_TRY(ApplyOverride(config, field, value));
  FillDefaults(config);
  if (const std::optional<int> mbs = absl::GetFlag(FLAGS_micro_batches); mbs.has_value()) {
    LRKV_REQUIRE(*mbs > 0, "--micro_batches must be positive, got ", *mbs);
    LRKV_REQUIRE(config.parallel().dp() > 0, "parallel.dp must be positive, got ", config.parallel().dp());
    const int64_t per_rank = config.train().global_batch() / config.parallel().dp();
    LRKV_REQUIRE(per_rank % *mbs == 0, "--micro_batches=", *mbs, " does not divide the ", per_rank,
                 " sequences each data-parallel rank gets per step");
    config.mutable_train()->set_micro_batch(static_cast<int32_t>(per_rank / *mbs));
  }
  return config;
}

}  // namespace

absl::Status RunTrainCommand(const ConfigOverrides& config_overrides, MpiCommunicator& world) {
  absl::StatusOr<RunConfig> config = ConfigFromCommandLine(config_overrides);
  // Every rank reads the same command line and fails alike; agreeing lets them end in order.
  LRKV_TRY(AgreeOnStatus(world, config.status()));
  return Train(*config, world).status();
}

}  // namespace lrkv
