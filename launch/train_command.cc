// lrkv train --config=FILE [--steps=N] [--seed=S] [--data_dir=D] [--out_dir=O] [--metrics_out=F]
//            [--model.FIELD=V ...] [--train.FIELD=V ...]
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

namespace lrkv {

absl::Status RunTrainCommand(const ConfigOverrides& config_overrides) {
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
  overrides.insert(overrides.end(), config_overrides.begin(), config_overrides.end());
  for (const auto& [field, value] : overrides) LRKV_TRY(ApplyOverride(config, field, value));
  FillDefaults(config);
  return Train(config).status();
}

}  // namespace lrkv
