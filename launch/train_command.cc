// lrkv train --config=FILE [--steps=N] [--seed=S] [--data_dir=D] [--out_dir=O] [--metrics_out=F]
//            [--dp=N --tp=N --pp=N --zero1 --micro_batches=M --print_layout]
//            [--checkpoint_dir=D --save_every=N --resume] [--peak=DEVICE]
//            [--model.FIELD=V ...] [--train.FIELD=V ...] [--parallel.FIELD=V ...]
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "launch/commands.h"
#include "launch/trainer.h"
#include "model/config.h"
#include "runtime/status.h"

ABSL_FLAG(std::string, config, "", "train: run config, text-format RunConfig (configs/*.textproto)");
ABSL_FLAG(int64_t, steps, -1, "train: override train.steps");
ABSL_FLAG(int64_t, seed, -1, "train: override train.seed (init and data order)");
ABSL_FLAG(std::string, data_dir, "", "train: override train.data_dir (output of prepare-data)");
ABSL_FLAG(std::string, out_dir, "", "train: override train.out_dir (metrics.jsonl, summary.json)");
ABSL_FLAG(std::string, metrics_out, "", "train: override train.metrics_out (default OUT_DIR/metrics.jsonl)");
ABSL_FLAG(int, dp, 0, "train: data-parallel ranks (parallel.dp); world size = dp x pp x tp");
ABSL_FLAG(int, tp, 0, "train: tensor-parallel ranks (parallel.tp): heads, MLP columns and vocabulary split");
ABSL_FLAG(int, pp, 0, "train: pipeline stages (parallel.pp): layers split; --micro_batches per pipeline");
ABSL_FLAG(bool, zero1, false, "train: shard optimizer state across data-parallel ranks (parallel.zero1)");
ABSL_FLAG(int, micro_batches, 0,
          "train: micro-batches per step on each pipeline (DP rank); sets train.micro_batch = global_batch / (dp x "
          "micro_batches)");
ABSL_FLAG(std::string, checkpoint_dir, "", "train: directory of sharded checkpoints (train.checkpoint_dir)");
ABSL_FLAG(int64_t, save_every, -1, "train: save a checkpoint every N steps and at the end (train.save_every)");
ABSL_FLAG(bool, resume, false,
          "train: continue from the latest checkpoint in --checkpoint_dir, at this launch's layout (train.resume)");
ABSL_FLAG(std::string, peak, "",
          "train: each rank's peak for MFU (train.peak_device): a device (h100, h200, a100, ...) or FLOP/s");
ABSL_FLAG(bool, print_layout, false, "train: print every rank's parameters (name, local shape) before training");

namespace lrkv {

absl::Status RunTrainCommand(const ConfigOverrides& config_overrides, MpiCommunicator& world) {
  const std::string path = absl::GetFlag(FLAGS_config);
  LRKV_REQUIRE(!path.empty(), "train needs --config=FILE (see configs/)");
  LRKV_TRY_ASSIGN(RunConfig config, LoadRunConfig(path));
  // The named flags are shorthands for config fields; they apply before the generic overrides.
  ConfigOverrides overrides;
  if (absl::GetFlag(FLAGS_steps) >= 0) overrides.emplace_back("train.steps", std::to_string(absl::GetFlag(FLAGS_steps)));
  if (absl::GetFlag(FLAGS_seed) >= 0) overrides.emplace_back("train.seed", std::to_string(absl::GetFlag(FLAGS_seed)));
  if (!absl::GetFlag(FLAGS_data_dir).empty()) overrides.emplace_back("train.data_dir", absl::GetFlag(FLAGS_data_dir));
  if (!absl::GetFlag(FLAGS_out_dir).empty()) overrides.emplace_back("train.out_dir", absl::GetFlag(FLAGS_out_dir));
  if (!absl::GetFlag(FLAGS_metrics_out).empty()) {
    overrides.emplace_back("train.metrics_out", absl::GetFlag(FLAGS_metrics_out));
  }
  for (const char* dim : {"dp", "tp", "pp"}) {
    const int v = dim[0] == 'd' ? absl::GetFlag(FLAGS_dp) : dim[0] == 't' ? absl::GetFlag(FLAGS_tp) : absl::GetFlag(FLAGS_pp);
    if (v > 0) overrides.emplace_back(std::string("parallel.") + dim, std::to_string(v));
  }
  if (absl::GetFlag(FLAGS_zero1)) overrides.emplace_back("parallel.zero1", "true");
  if (absl::GetFlag(FLAGS_print_layout)) overrides.emplace_back("train.print_layout", "true");
  if (!absl::GetFlag(FLAGS_peak).empty()) overrides.emplace_back("train.peak_device", absl::GetFlag(FLAGS_peak));
  if (!absl::GetFlag(FLAGS_checkpoint_dir).empty()) {
    overrides.emplace_back("train.checkpoint_dir", absl::GetFlag(FLAGS_checkpoint_dir));
  }
  if (absl::GetFlag(FLAGS_save_every) >= 0) {
    overrides.emplace_back("train.save_every", std::to_string(absl::GetFlag(FLAGS_save_every)));
  }
  if (absl::GetFlag(FLAGS_resume)) overrides.emplace_back("train.resume", "true");
  overrides.insert(overrides.end(), config_overrides.begin(), config_overrides.end());
  for (const auto& [field, value] : overrides) LRKV_TRY(ApplyOverride(config, field, value));
  FillDefaults(config);
  if (const int mbs = absl::GetFlag(FLAGS_micro_batches); mbs > 0) {
    const int64_t per_rank = config.train().global_batch() / config.parallel().dp();
    LRKV_REQUIRE(per_rank % mbs == 0, "--micro_batches=", mbs, " does not divide the ", per_rank,
                 " sequences each data-parallel rank gets per step");
    config.mutable_train()->set_micro_batch(static_cast<int32_t>(per_rank / mbs));
  }
  return Train(config, world).status();
}

}  // namespace lrkv
