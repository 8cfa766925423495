// lrkv flops --config=FILE [--config=FILE ...] [--format=table|json]
// The analytic cost of each config (model/flop_model.h), side by side with ratios to the first.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launch/commands.h"
#include "launch/metrics_writer.h"
#include "model/config.h"
#include "model/flop_model.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

struct Row {
  std::string label;
  std::vector<double> values;  // one per config
  bool integer = true;
};

}  // namespace

absl::Status RunFlopsCommand(const std::vector<std::string>& configs, const std::string& format) {
  LRKV_REQUIRE(!configs.empty(), "flops needs at least one --config=FILE");
  LRKV_REQUIRE(format == "table" || format == "json", "--format must be table or json, got '", format, "'");
  std::vector<std::string> names;
  std::vector<ModelConfig> models;
  for (const std::string& path : configs) {
    LRKV_TRY_ASSIGN(RunConfig c, LoadRunConfig(path));
    FillDefaults(c);
    LRKV_TRY(ValidateModelConfig(c.model()));
    names.push_back(path.substr(path.find_last_of('/') + 1));
    models.push_back(c.model());
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
                           {"kv_cache_bf16_bytes_per_token", {}}, {"seq_len", {}}};
  for (const ModelConfig& m : models) {
    const ModelCost c = AnalyzeModel(m);
    const double t = m.seq_len();
    const double v[] = {double(c.params_total), double(c.params_embedding), double(c.params_lm_head),
                        double(c.params_attention), double(c.params_mlp), double(c.params_norm),
                        c.forward_flops() / t, 3 * c.forward_flops() / t, c.attention_projection_flops / t,
                        c.attention_core_flops / t, c.attention_core_full_flops / t, c.mlp_flops / t,
                        c.lm_head_flops / t, double(c.kv_cache_values_per_token_per_layer),
                        double(c.kv_cache_values_per_token), 2.0 * c.kv_cache_values_per_token, t};
    for (size_t i = 0; i < rows.size(); ++i) rows[i].values.push_back(v[i]);
  }
  if (format == "json") {
    for (size_t k = 0; k < models.size(); ++k) {
      JsonRecord r;
      r.Add("config", configs[k]).Add("attention", std::string(AttentionKindName(models[k].attention())));
      for (const Row& row : rows) r.Add(row.label, static_cast<int64_t>(row.values[k]));
      std::printf("%s\n", r.ToString().c_str());
    }
    return absl::OkStatus();
  }
  std::printf("Model FLOPs: 2 per multiply-add; train = 3 x forward; causal attention core (T(T+1)/2 pairs),\n"
              "full T^2 figure beside it; embedding lookup, norms, RoPE, softmax, activations not counted.\n\n");
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
