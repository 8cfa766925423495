// lrkv flops-project --config=FILE --baseline=FILE --tokens=N [--steps_ratio=X | --steps_ratio_from=JSON
//                    [--steps_ratio_baseline=LABEL]] [--mfu=M --peak=P [--gpus=G]] [--format=table|json]
// Projects a full-scale training run: total training FLOPs of a candidate and a baseline config for a
// token budget, the saving from the per-token FLOP difference and from needing X times the
// baseline's tokens to reach its loss, and the GPU-hours at a given MFU and peak. A ratio measured
// over seed groups (flops-compare with globs) carries its 95% range into the saving and GPU-hours
// (keys *_low / *_high): an extrapolation from small runs, not a measurement at scale.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/reports/device_peaks.h"
#include "model/config.h"
#include "model/flop_model.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] =
    "lrkv flops-project --config=FILE --baseline=FILE --tokens=N "
    "[--steps_ratio=X | --steps_ratio_from=FLOPS_COMPARE.json [--steps_ratio_baseline=LABEL]] [--mfu=M --peak=FLOPS|DEVICE [--gpus=G]] "
    "[--format=table|json]";

// Training matmul FLOPs per token: 3 x forward, per sequence / seq_len (model/flop_model.h).
absl::StatusOr<double> TrainFlopsPerToken(const std::string& path) {
  LRKV_TRY_ASSIGN(RunConfig c, LoadRunConfig(path));
  FillDefaults(c);
  LRKV_TRY(ValidateModelConfig(c.model()));
  return 3.0 * static_cast<double>(AnalyzeModel(c.model()).forward_flops()) / c.model().seq_len();
}

absl::StatusOr<double> PositiveNumber(const std::string& name, const std::string& text) {
  double v = 0;
  LRKV_REQUIRE(absl::SimpleAtod(text, &v) && std::isfinite(v) && v > 0, "--", name,
               " must be a positive number, got '", text, "'");
  return v;
}

// The candidate's tokens-to-target multiple measured by `lrkv flops-compare`, with its 95% range
// when the comparison was of seed groups (NaN bounds otherwise).
struct MeasuredRatio {
  double mean = 1, low = std::nan(""), high = std::nan("");
  bool from_groups = false;  // a bound may still be NaN: unbounded on that side
};

// From a single-run comparison: its one row's tokens_ratio (the steps ratio when both runs train on
// the same batch). From seed groups: the group against `baseline` (or the only group): its mean
// steps ratio at the interpolated crossing and the range flops-compare widened by the target's
// uncertainty.
absl::StatusOr<MeasuredRatio> StepsRatioFromCompare(const std::string& path, const std::string& baseline) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": malformed JSON: ", e.what()));
  }
  LRKV_REQUIRE(j.is_object() && j.contains("rows") && j["rows"].is_array(), path,
               ": not a flops-compare JSON (no \"rows\")");
  const std::string metric = j.value("metric", std::string("metric"));
  const nlohmann::json groups = j.value("groups", nlohmann::json::array());
  const nlohmann::json* group = nullptr;
  std::string labels;
  for (const nlohmann::json& g : groups) {
    absl::StrAppend(&labels, labels.empty() ? "" : ", ", g.value("baseline", std::string()));
    if (baseline.empty() ? groups.size() == 1 : g.value("baseline", std::string()) == baseline) group = &g;
  }
  LRKV_REQUIRE(baseline.empty() || group != nullptr, path, " has no baseline group '", baseline, "' (it has ",
               labels, ")");
  const bool seeds = group != nullptr && (group->value("baseline_runs", nlohmann::json::array()).size() > 1 ||
                                          group->value("candidate_runs", nlohmann::json::array()).size() > 1);
  if (seeds) {
    LRKV_REQUIRE(group->value("verdict", std::string()) != "not reached", path, ": some candidate seed never reached ",
                 group->value("baseline", std::string()), "'s mean ", metric, ", so there is no steps ratio");
    const auto number = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : std::nan(""); };
    MeasuredRatio r;
    r.from_groups = true;
    r.mean = number((*group)["steps_ratio"]["mean"]);
    r.low = number((*group)["steps_ratio_low"]);
    r.high = number((*group)["steps_ratio_high"]);
    LRKV_REQUIRE(std::isfinite(r.mean) && r.mean > 0, path, ": the group has no steps ratio");
    return r;
  }
  LRKV_REQUIRE(j["rows"].size() == 1, path, " compares ", j["rows"].size(),
               " baselines; pass --steps_ratio_baseline=LABEL (one of: ", labels, ") or --steps_ratio");
  const nlohmann::json& row = j["rows"][0];
  LRKV_REQUIRE(row.value("reached", false), path, ": the candidate never reached the baseline's ", metric,
               ", so there is no steps ratio");
  LRKV_REQUIRE(row.contains("tokens_ratio") && row["tokens_ratio"].is_number(), path, ": row has no tokens_ratio");
  return MeasuredRatio{row["tokens_ratio"].get<double>()};
}

}  // namespace

absl::Status RunFlopsProjectCommand(const std::vector<std::string>& args) {
  LRKV_TRY_ASSIGN(const NamedArgs named,
                  ParseNamedArgs(args,
                                 {"config", "baseline", "tokens", "steps_ratio", "steps_ratio_from", "steps_ratio_baseline", "mfu", "gpus",
                                  "peak", "format"},
                                 kUsage));
  std::string config, baseline, format = "table", peak_arg, ratio_from, ratio_baseline;
  double tokens = 0, steps_ratio = 1, mfu = 0, gpus = 1;
  bool has_ratio = false, has_mfu = false, has_gpus = false;
  for (const auto& [name, value] : named) {
    if (name == "config") config = value;
    if (name == "baseline") baseline = value;
    if (name == "format") format = value;
    if (name == "peak") peak_arg = value;
    if (name == "steps_ratio_from") ratio_from = value;
    if (name == "steps_ratio_baseline") ratio_baseline = value;
    if (name == "tokens") {
      LRKV_TRY_ASSIGN(tokens, PositiveNumber(name, value));
    }
    if (name == "steps_ratio") {
      LRKV_TRY_ASSIGN(steps_ratio, PositiveNumber(name, value));
      has_ratio = true;
    }
    if (name == "mfu") {
      LRKV_TRY_ASSIGN(mfu, PositiveNumber(name, value));
      has_mfu = true;
    }
    if (name == "gpus") {
      LRKV_TRY_ASSIGN(gpus, PositiveNumber(name, value));
      has_gpus = true;
    }
  }
  LRKV_REQUIRE(!config.empty() && !baseline.empty() && tokens > 0,
               "flops-project needs --config, --baseline and --tokens\nusage: ", kUsage);
  LRKV_REQUIRE(format == "table" || format == "json", "--format must be table or json, got '", format, "'");
  LRKV_REQUIRE(!(has_ratio && !ratio_from.empty()), "give --steps_ratio or --steps_ratio_from, not both");
  LRKV_REQUIRE(has_mfu == !peak_arg.empty(), "--mfu and --peak go together (GPU-hours need both)");
  LRKV_REQUIRE(!has_gpus || has_mfu, "--gpus needs --mfu and --peak");
  LRKV_REQUIRE(mfu <= 1, "--mfu is a fraction of the peak in (0, 1], got ", mfu);
  // LRKV_TRY_ASSIGN is several statements: it needs the braces.
  LRKV_REQUIRE(ratio_baseline.empty() || !ratio_from.empty(), "--steps_ratio_baseline needs --steps_ratio_from");
  MeasuredRatio measured{steps_ratio};
  if (!ratio_from.empty()) {
    LRKV_TRY_ASSIGN(measured, StepsRatioFromCompare(ratio_from, ratio_baseline));
    steps_ratio = measured.mean;
  }
  // From seed groups the range is always reported; a side whose bound flops-compare could not set
  // (a seed never reaches that end of the target's interval) is unbounded: null in the JSON.
  const bool has_range = measured.from_groups;
  double peak = 0;
  if (has_mfu) {
    LRKV_TRY_ASSIGN(peak, LookupDevicePeak(peak_arg));
  }

  LRKV_TRY_ASSIGN(const double cand_tpt, TrainFlopsPerToken(config));
  LRKV_TRY_ASSIGN(const double base_tpt, TrainFlopsPerToken(baseline));
  const double ratio = cand_tpt / base_tpt;
  const double base_total = tokens * base_tpt;
  const double cand_same_tokens = tokens * cand_tpt;  // per-token difference alone
  const double cand_tokens = steps_ratio * tokens;    // tokens it needs to reach the baseline's loss
  const double cand_total = cand_tokens * cand_tpt;
  const double saving_per_token_pct = 100.0 * (1.0 - ratio);
  const double saving_pct = 100.0 * (1.0 - cand_total / base_total);
  // GPU-hours do not depend on the GPU count; wall-clock time does.
  const auto gpu_hours = [&](double flops) { return flops / (mfu * peak) / 3600.0; };

  nlohmann::ordered_json j;
  j["config"] = config;
  j["baseline"] = baseline;
  j["tokens"] = tokens;
  j["steps_ratio"] = steps_ratio;
  j["candidate_train_flops_per_token"] = cand_tpt;
  j["baseline_train_flops_per_token"] = base_tpt;
  j["flops_per_token_ratio"] = ratio;
  j["baseline_total_flops"] = base_total;
  j["candidate_total_flops_same_tokens"] = cand_same_tokens;
  j["candidate_tokens_to_target"] = cand_tokens;
  j["candidate_total_flops"] = cand_total;
  j["saving_per_token_pct"] = saving_per_token_pct;
  j["saving_pct"] = saving_pct;
  j["saving_flops"] = base_total - cand_total;
  // The range: a higher steps ratio is a smaller saving.
  const auto saving_at = [&](double x) { return 100.0 * (1.0 - x * tokens * cand_tpt / base_total); };
  const auto or_null = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  if (has_range) {
    j["steps_ratio_low"] = or_null(measured.low), j["steps_ratio_high"] = or_null(measured.high);
    j["saving_pct_low"] = or_null(saving_at(measured.high)), j["saving_pct_high"] = or_null(saving_at(measured.low));
  }
  if (has_mfu) {
    j["mfu"] = mfu;
    j["gpus"] = gpus;
    j["peak"] = peak_arg;
    j["peak_flops_per_s"] = peak;
    j["baseline_gpu_hours"] = gpu_hours(base_total);
    j["candidate_gpu_hours"] = gpu_hours(cand_total);
    j["gpu_hours_saved"] = gpu_hours(base_total) - gpu_hours(cand_total);
    j["baseline_wall_hours"] = gpu_hours(base_total) / gpus;
    j["candidate_wall_hours"] = gpu_hours(cand_total) / gpus;
    if (has_range) {
      j["candidate_gpu_hours_low"] = or_null(gpu_hours(measured.low * tokens * cand_tpt));
      j["candidate_gpu_hours_high"] = or_null(gpu_hours(measured.high * tokens * cand_tpt));
      j["gpu_hours_saved_low"] = or_null(gpu_hours(base_total) - gpu_hours(measured.high * tokens * cand_tpt));
      j["gpu_hours_saved_high"] = or_null(gpu_hours(base_total) - gpu_hours(measured.low * tokens * cand_tpt));
    }
  }
  if (format == "json") {
    std::printf("%s\n", j.dump().c_str());
    return absl::OkStatus();
  }
  const auto name = [](const std::string& p) { return p.substr(p.find_last_of('/') + 1); };
  std::printf("flops-project: %s (candidate) vs %s (baseline), %.4g tokens, steps ratio %.4g\n",
              name(config).c_str(), name(baseline).c_str(), tokens, steps_ratio);
  std::printf("%-34s %14s %14s %10s\n", "", "baseline", "candidate", "ratio");
  std::printf("%-34s %14.6g %14.6g %9.4fx\n", "train FLOPs per token", base_tpt, cand_tpt, ratio);
  std::printf("%-34s %14.6g %14.6g %9.4fx\n", "tokens to the baseline's loss", tokens, cand_tokens, steps_ratio);
  std::printf("%-34s %14.6g %14.6g %9.4fx\n", "total train FLOPs", base_total, cand_total, cand_total / base_total);
  if (has_mfu) {
    const std::string label = absl::StrFormat("GPU-hours (MFU %.3g, %.4g TFLOP/s)", mfu, peak / 1e12);
    std::printf("%-34s %14.6g %14.6g\n", label.c_str(),
                gpu_hours(base_total), gpu_hours(cand_total));
    std::printf("%-34s %14.6g %14.6g\n", absl::StrFormat("wall-clock hours on %.6g GPUs", gpus).c_str(),
                gpu_hours(base_total) / gpus, gpu_hours(cand_total) / gpus);
  }
  std::printf("saving: %.2f%% from FLOPs per token alone; %.2f%% to the baseline's loss (%.4g FLOPs",
              saving_per_token_pct, saving_pct, base_total - cand_total);
  if (has_mfu) std::printf(", %.4g GPU-hours", gpu_hours(base_total) - gpu_hours(cand_total));
  std::printf(")\n");
  if (has_range) {
    const auto num = [](double v, const char* unit) {
      return std::isfinite(v) ? absl::StrFormat("%.4g%s", v, unit) : std::string("unbounded");
    };
    std::printf("range (95%%, from seed groups; an extrapolation from small runs): steps ratio %s to %s, saving %s to %s",
                num(measured.low, "").c_str(), num(measured.high, "").c_str(), num(saving_at(measured.high), "%").c_str(),
                num(saving_at(measured.low), "%").c_str());
    if (has_mfu) {
      std::printf(", %s to %s GPU-hours saved",
                  num(gpu_hours(base_total) - gpu_hours(measured.high * tokens * cand_tpt), "").c_str(),
                  num(gpu_hours(base_total) - gpu_hours(measured.low * tokens * cand_tpt), "").c_str());
    }
    std::printf("\n");
  }
  return absl::OkStatus();
}

}  // namespace lrkv
