// lrkv flops --config=FILE [--config=FILE ...] [--layout=tpN,ppN,dpN] [--memory] [--format=table|json]
// The analytic cost of each config (model/flop_model.h), side by side with ratios to the first; with
// --layout, also what each rank of that layout holds and computes (AnalyzeLayout), the work that
// tensor parallelism repeats on every rank included and reported separately; with --memory, the
// memory model's bytes per rank (model/memory_model.h, as `lrkv memory`).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/train/metrics_writer.h"
#include "model/config.h"
#include "model/flop_model.h"
#include "model/memory_model.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

struct Row {
  std::string label;
  std::vector<double> values;  // one per config
  bool integer = true;
};

// Per-rank rows of a layout: job totals per token, then per stage per rank; per step too when
// `per_step` (every config sets train.global_batch).
void AddLayoutRows(const RunConfig& c, bool per_step, std::vector<Row>& rows, bool first_config) {
  const ModelConfig& m = c.model();
  const ParallelConfig& p = c.parallel();
  const std::vector<RankCost> stages = AnalyzeLayout(m, p.tp(), p.pp());
  const double t = m.seq_len(), batch = c.train().global_batch();
  double job = 0, extra = 0;
  for (const RankCost& r : stages) {
    job += double(p.tp()) * r.forward_flops;
    extra += (p.tp() - 1.0) * r.replicated_forward_flops;
  }
  std::vector<std::pair<std::string, double>> v = {
      {"job_forward_flops_per_token", job / t},
      {"job_train_flops_per_token", 3 * job / t},
      {"tp_replicated_extra_forward_flops_per_token", extra / t},
      {"kv_cache_values_per_token_per_layer_per_tp_rank", double(stages[0].kv_cache_values_per_token_per_layer)},
      {"kv_cache_bf16_bytes_per_token_per_tp_rank",
       2.0 * stages[0].kv_cache_values_per_token_per_layer * m.n_layers()}};
  if (per_step) v.push_back({"job_train_flops_per_step", 3 * job * batch});
  for (size_t s = 0; s < stages.size(); ++s) {
    const RankCost& r = stages[s];
    const std::string stage = absl::StrCat("stage", s, "_");
    v.push_back({stage + "layers", double(r.end_layer - r.first_layer)});
    v.push_back({stage + "params_per_rank", double(r.params)});
    v.push_back({stage + "forward_flops_per_token_per_rank", r.forward_flops / t});
    v.push_back({stage + "replicated_forward_flops_per_token_per_rank", r.replicated_forward_flops / t});
    if (per_step) v.push_back({stage + "train_flops_per_step_per_rank", 3.0 * r.forward_flops * batch / p.dp()});
  }
  if (first_config) {
    for (const auto& [label, value] : v) rows.push_back({label, {}});
  }
  for (size_t i = 0; i < v.size(); ++i) rows[rows.size() - v.size() + i].values.push_back(v[i].second);
}

}  // namespace

absl::Status RunFlopsCommand(const std::vector<std::string>& configs, const std::string& format,
                             const std::string& layout, const ConfigOverrides& overrides, bool memory) {
  LRKV_REQUIRE(!configs.empty(), "flops needs at least one --config=FILE");
  LRKV_REQUIRE(format == "table" || format == "json", "--format must be table or json, got '", format, "'");
  std::vector<std::string> names;
  std::vector<RunConfig> runs;
  std::vector<ModelConfig> models;
  for (const std::string& path : configs) {
    LRKV_TRY_ASSIGN(RunConfig c, LoadRunConfig(path));
    if (!layout.empty()) {  // the layout replaces the file's, and --parallel.X overrides apply on top
      c.mutable_parallel()->Clear();
      LRKV_TRY(ParseLayout(layout, *c.mutable_parallel()));
    }
    for (const auto& [field, value] : overrides) LRKV_TRY(ApplyOverride(c, field, value));
    FillDefaults(c);
    LRKV_TRY(ValidateModelConfig(c.model()));
    if (!layout.empty() || memory) LRKV_TRY(ValidateParallelConfig(c));
    names.push_back(path.substr(path.find_last_of('/') + 1));
    models.push_back(c.model());
    runs.push_back(c);
  }
  // Per token: per-sequence figures divided by seq_len (exact: see flop_model.h).
  std::vector<Row> rows = {{"params_total", {}}, {"params_embedding", {}}, {"params_lm_head", {}},
                           {"params_attention", {}}, {"params_mlp", {}}, {"params_norm", {}},
                           {"forward_flops_per_token", {}}, {"train_flops_per_token", {}},
                           {"attention_projection_forward_flops_per_token", {}},
                           {"attention_core_forward_flops_per_token", {}},
                           {"attention_core_full_forward_flops_per_token", {}},
                           {"mlp_forward_flops_per_token", {}}, {"lm_head_forward_flops_per_token", {}},
                           {"kv_cache_values_per_token_per_layer", {}}, {"kv_cache_values_per_token", {}},
                           {"kv_cache_bf16_bytes_per_token", {}}, {"seq_len", {}},
                           {"recompute_forward_flops_per_token", {}}, {"hardware_train_flops_per_token", {}}};
  for (size_t k = 0; k < models.size(); ++k) {
    const ModelConfig& m = models[k];
    const ModelCost c = AnalyzeModel(m);
    const double t = m.seq_len(), recompute = RecomputeForwardFlops(c, runs[k].train().recompute());
    const double v[] = {double(c.params_total), double(c.params_embedding), double(c.params_lm_head),
                        double(c.params_attention), double(c.params_mlp), double(c.params_norm),
                        c.forward_flops() / t, 3 * c.forward_flops() / t, c.attention_projection_flops / t,
                        c.attention_core_flops / t, c.attention_core_full_flops / t, c.mlp_flops / t,
                        c.lm_head_flops / t, double(c.kv_cache_values_per_token_per_layer),
                        double(c.kv_cache_values_per_token), 2.0 * c.kv_cache_values_per_token, t,
                        recompute / t, (3 * c.forward_flops() + recompute) / t};
    for (size_t i = 0; i < std::size(v); ++i) rows[i].values.push_back(v[i]);
  }
  if (!layout.empty()) {
    bool per_step = true;
    for (const RunConfig& r : runs) per_step &= r.train().global_batch() > 0;
    for (size_t k = 0; k < runs.size(); ++k) AddLayoutRows(runs[k], per_step, rows, k == 0);
  }
  if (memory) {
    for (size_t k = 0; k < runs.size(); ++k) {
      const std::vector<MemoryCategory> cats = LargestRank(PredictRankMemory(runs[k])).Categories();
      if (k == 0) {
        for (const MemoryCategory& cat : cats) rows.push_back({absl::StrCat("memory_", cat.name, "_bytes_per_rank"), {}});
      }
      for (size_t i = 0; i < cats.size(); ++i) rows[rows.size() - cats.size() + i].values.push_back(cats[i].bytes);
    }
  }
  if (format == "json") {
    for (size_t k = 0; k < models.size(); ++k) {
      JsonRecord r;
      r.Add("config", configs[k]).Add("attention", std::string(AttentionKindName(models[k].attention())));
      if (!layout.empty()) {
        const ParallelConfig& p = runs[k].parallel();
        r.Add("layout", absl::StrCat("tp", p.tp(), ",pp", p.pp(), ",dp", p.dp()));
      }
      for (const Row& row : rows) r.Add(row.label, static_cast<int64_t>(row.values[k]));
      std::printf("%s\n", r.ToString().c_str());
    }
    return absl::OkStatus();
  }
  std::printf("Model FLOPs: 2 per multiply-add; train = 3 x forward; causal attention core (T(T+1)/2 pairs),\n"
              "full T^2 figure beside it; embedding lookup, norms, RoPE, softmax, activations not counted.\n");
  if (!layout.empty()) {
    std::printf("Layout %s: per-rank rows are for every TP rank of a stage (and every DP replica); job rows\n"
                "include the work tensor parallelism repeats on every rank (replicated weights).\n",
                layout.c_str());
  }
  std::printf("\n");
  std::printf("%-46s", "");
  for (const std::string& n : names) std::printf(" %28s", n.c_str());
  std::printf("\n");
  for (const Row& row : rows) {
    std::printf("%-46s", row.label.c_str());
    for (size_t k = 0; k < row.values.size(); ++k) {
      std::string cell = absl::StrFormat("%.0f", row.values[k]);
      if (k > 0 && rows.front().values.size() > 1 && row.values[0] != 0) {
        absl::StrAppendFormat(&cell, " (%.3fx)", row.values[k] / row.values[0]);
      }
      std::printf(" %28s", cell.c_str());
    }
    std::printf("\n");
  }
  return absl::OkStatus();
}

}  // namespace lrkv
