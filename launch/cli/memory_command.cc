// lrkv memory --config=FILE [--layout=tpN,ppN,dpN] [--zero1] [--format=table|json]
//             [--gpu_memory=80GiB | --peak=h100] [--search=GPUS] [--model.X=V --train.X=V ...]
// What each rank of a training job holds at its peak (model/memory_model.h), by category; with a
// device's memory, whether it fits; with --search, every layout of that many GPUs, which recompute
// mode each needs to fit and what each rank computes per step.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/reports/device_peaks.h"
#include "model/config.h"
#include "nlohmann/json.hpp"
#include "model/flop_model.h"
#include "model/memory_model.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] =
    "lrkv memory --config=FILE [--layout=tpN,ppN,dpN] [--zero1=true] [--format=table|json] "
    "[--gpu_memory=80GiB | --peak=h100] [--search=GPUS] [--model.X=V] [--train.X=V]";
constexpr double kGiB = 1024.0 * 1024 * 1024;

std::string LayoutName(const ParallelConfig& p) { return absl::StrCat("tp", p.tp(), ",pp", p.pp(), ",dp", p.dp()); }

// Per-rank train FLOPs per step (model FLOPs, the largest stage).
double RankFlopsPerStep(const RunConfig& c) {
  double most = 0;
  for (const RankCost& r : AnalyzeLayout(c.model(), c.parallel().tp(), c.parallel().pp())) {
    most = std::max(most, 3.0 * r.forward_flops * c.train().global_batch() / c.parallel().dp());
  }
  return most;
}

// The config with `layout` and defaults; ok only when the layout is valid for it.
absl::StatusOr<RunConfig> WithLayout(RunConfig c, const ParallelConfig& layout) {
  c.mutable_parallel()->set_tp(layout.tp());
  c.mutable_parallel()->set_pp(layout.pp());
  c.mutable_parallel()->set_dp(layout.dp());
  FillDefaults(c);
  LRKV_TRY(ValidateParallelConfig(c));
  return c;
}

absl::Status PrintSearch(const RunConfig& base, int gpus, double capacity, const std::string& format) {
  LRKV_REQUIRE(capacity > 0, "--search needs the device's memory: --gpu_memory=SIZE or --peak=DEVICE");
  const Recompute modes[] = {NONE, ATTENTION, BLOCK};
  if (format == "table") {
    std::printf("Layouts of %d GPUs of %.1f GiB (peak per rank in GiB for each recompute mode; * fits):\n\n", gpus,
                capacity / kGiB);
    std::printf("%-18s %12s %12s %12s   %-10s %22s\n", "layout", "NONE", "ATTENTION", "BLOCK", "fits with",
                "train FLOPs/step/rank");
  }
  int listed = 0;
  for (int tp = 1; tp <= gpus; ++tp) {
    for (int pp = 1; tp * pp <= gpus; ++pp) {
      if (gpus % (tp * pp) != 0) continue;
      ParallelConfig layout;
      layout.set_tp(tp), layout.set_pp(pp), layout.set_dp(gpus / (tp * pp));
      absl::StatusOr<RunConfig> c = WithLayout(base, layout);
      if (!c.ok()) continue;  // heads, layers or batch do not split this way
      ++listed;
      std::string fits_with = "none";
      nlohmann::ordered_json json = {{"layout", LayoutName(c->parallel())}, {"gpus", gpus}};
      std::vector<std::string> cells;
      for (Recompute mode : modes) {
        c->mutable_train()->set_recompute(mode);
        const double peak = LargestRank(PredictRankMemory(*c, Device::kCuda)).peak();
        const bool fits = peak <= capacity;
        if (fits && fits_with == "none") fits_with = Recompute_Name(mode);
        cells.push_back(absl::StrFormat("%.1f%s", peak / kGiB, fits ? "*" : ""));
        json[absl::StrCat("peak_bytes_", Recompute_Name(mode))] = int64_t(peak);
      }
      const double flops = RankFlopsPerStep(*c);
      json["fits_with"] = fits_with;
      json["train_flops_per_step_per_rank"] = flops;
      if (format == "json") {
        std::printf("%s\n", json.dump().c_str());
      } else {
        std::printf("%-18s %12s %12s %12s   %-10s %22.3e\n", LayoutName(c->parallel()).c_str(), cells[0].c_str(),
                    cells[1].c_str(), cells[2].c_str(), fits_with.c_str(), flops);
      }
    }
  }
  LRKV_REQUIRE(listed > 0, "no layout of ", gpus, " GPUs is valid for this config (heads, layers and "
               "train.global_batch must split over tp, pp and dp)");
  return absl::OkStatus();
}

}  // namespace

absl::Status RunMemoryCommand(const std::vector<std::string>& args) {
  NamedArgs named;
  ConfigOverrides overrides;
  std::vector<std::string> own;
  for (const std::string& a : args) {
    if (a.rfind("--model.", 0) == 0 || a.rfind("--train.", 0) == 0 || a.rfind("--parallel.", 0) == 0) {
      const size_t eq = a.find('=');
      LRKV_REQUIRE(eq != std::string::npos, "'", a, "' needs a value: ", a, "=VALUE");
      overrides.emplace_back(a.substr(2, eq - 2), a.substr(eq + 1));
    } else {
      own.push_back(a);
    }
  }
  LRKV_TRY_ASSIGN(named, ParseNamedArgs(own, {"config", "layout", "zero1", "format", "gpu_memory", "peak", "search"},
                                        kUsage));
  std::string config_path, layout, format = "table";
  double capacity = 0;
  int search = 0;
  for (const auto& [name, value] : named) {
    if (name == "config") config_path = value;
    if (name == "layout") layout = value;
    if (name == "format") format = value;
    if (name == "zero1") overrides.emplace_back("parallel.zero1", value);
    if (name == "gpu_memory") {
      LRKV_TRY_ASSIGN(capacity, ParseByteSize(value));
    }
    if (name == "peak") {
      LRKV_TRY_ASSIGN(capacity, LookupDeviceMemory(value));
    }
    if (name == "search") {
      LRKV_REQUIRE(absl::SimpleAtoi(value, &search) && search >= 1, "--search=", value,
                   " must be a number of GPUs (>= 1)");
    }
  }
  LRKV_REQUIRE(!config_path.empty(), "memory needs --config=FILE\nusage: ", kUsage);
  LRKV_REQUIRE(format == "table" || format == "json", "--format must be table or json, got '", format, "'");
  LRKV_TRY_ASSIGN(RunConfig c, LoadRunConfig(config_path));
  for (const auto& [field, value] : overrides) LRKV_TRY(ApplyOverride(c, field, value));
  if (!layout.empty()) LRKV_TRY(ParseLayout(layout, *c.mutable_parallel()));
  const RunConfig as_given = c;  // a search fills the micro-batch per layout (global_batch / dp) unless given
  FillDefaults(c);
  LRKV_TRY(ValidateModelConfig(c.model()));
  if (search > 0) return PrintSearch(as_given, search, capacity, format);
  LRKV_TRY(ValidateParallelConfig(c));

  // A device's memory given: the job is sized for GPUs (their runtime, not this process's).
  const std::vector<RankMemory> ranks = PredictRankMemory(c, capacity > 0 ? Device::kCuda : Device::kCpu);
  const RankMemory largest = LargestRank(ranks);
  if (format == "json") {
    nlohmann::ordered_json r = {{"config", config_path},
                                {"layout", LayoutName(c.parallel())},
                                {"recompute", Recompute_Name(c.train().recompute())},
                                {"precision", Precision_Name(c.train().precision())},
                                {"micro_batch", c.train().micro_batch()},
                                {"zero1", c.parallel().zero1()},
                                {"ranks", nlohmann::ordered_json::array()}};
    for (const RankMemory& m : ranks) {  // one per pipeline stage: every TP and DP rank of it holds the same
      nlohmann::ordered_json s = {{"stage", m.stage}, {"micro_batches_in_flight", m.micro_batches_in_flight}};
      for (const MemoryCategory& cat : m.Categories()) s[absl::StrCat(cat.name, "_bytes")] = int64_t(cat.bytes);
      r["ranks"].push_back(s);
    }
    r["peak_bytes"] = int64_t(largest.peak());
    if (capacity > 0) r["device_memory_bytes"] = int64_t(capacity), r["fits"] = largest.peak() <= capacity;
    std::printf("%s\n", r.dump().c_str());
    return absl::OkStatus();
  }
  std::printf("Memory per rank of %s, layout %s, micro-batch %d, recompute %s, %s%s (GiB):\n\n", config_path.c_str(),
              LayoutName(c.parallel()).c_str(), c.train().micro_batch(), Recompute_Name(c.train().recompute()).c_str(),
              Precision_Name(c.train().precision()).c_str(), c.parallel().zero1() ? ", ZeRO-1" : "");
  std::printf("%-18s", "");
  for (const RankMemory& m : ranks) std::printf(" %10s", absl::StrCat("stage ", m.stage).c_str());
  std::printf("\n");
  std::vector<std::vector<MemoryCategory>> columns;
  for (const RankMemory& m : ranks) columns.push_back(m.Categories());
  for (size_t i = 0; i < columns[0].size(); ++i) {
    std::printf("%-18s", columns[0][i].name);
    for (const std::vector<MemoryCategory>& column : columns) std::printf(" %10.3f", column[i].bytes / kGiB);
    std::printf("\n");
  }
  std::printf("%-18s", "micro-batches held");
  for (const RankMemory& m : ranks) std::printf(" %10d", m.micro_batches_in_flight);
  std::printf("\n");
  if (capacity > 0) {
    std::printf("\n%s: the largest rank needs %.2f GiB of %.2f GiB\n", largest.peak() <= capacity ? "fits" : "does not fit",
                largest.peak() / kGiB, capacity / kGiB);
  }
  return absl::OkStatus();
}

}  // namespace lrkv
