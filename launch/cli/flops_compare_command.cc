// lrkv flops-compare --baseline=METRICS.jsonl [--baseline=...] --candidate=METRICS.jsonl
//                    [--metric=val_loss] [--out=PREFIX]
// For each baseline: the training FLOPs (steps, tokens) the candidate needs to reach the baseline's
// final value of the metric, as a table on stdout, PREFIX.csv, PREFIX.json and a plot PREFIX.png.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/reports/flops_compare.h"
#include "launch/reports/metrics_reader.h"
#include "launch/reports/python_plot.h"
#include "runtime/durable_file.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] =
    "lrkv flops-compare --baseline=METRICS.jsonl [--baseline=...] --candidate=METRICS.jsonl "
    "[--metric=val_loss] [--out=PREFIX]";

struct Run {
  std::string label;  // the run directory's name, e.g. brown-tiny-mha
  std::string path;
  std::vector<MetricPoint> points;
};

// The run's directory name (metrics files are RUN_DIR/metrics.jsonl); unique among `taken`.
std::string RunLabel(const std::string& path, const std::vector<Run>& taken) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) p = path;  // no current directory: the path as given
  p = p.lexically_normal();
  std::string label = p.parent_path().filename().string();
  if (label.empty()) label = p.stem().string();
  const std::string base = label;
  for (int k = 2;; ++k) {
    bool used = false;
    for (const Run& r : taken) used = used || r.label == label;
    if (!used) return label;
    label = absl::StrCat(base, "#", k);
  }
}

// Shortest text that reads back as the same double (what the tests compare exactly); "" for NaN.
std::string Real(double v) { return std::isfinite(v) ? nlohmann::json(v).dump() : ""; }
std::string Whole(double v) { return absl::StrFormat("%.0f", v); }
nlohmann::json RealOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) { return WriteFileDurably(path, text); }

const char* const kColumns[] = {"baseline", "baseline_path", "candidate", "candidate_path", "metric", "target",
                                "baseline_step", "baseline_tokens", "baseline_flops", "reached", "candidate_step",
                                "candidate_tokens", "candidate_flops", "candidate_value", "candidate_best",
                                "candidate_best_step", "flops_saved", "flops_saved_pct", "steps_ratio",
                                "tokens_ratio"};

// One row as (CSV text, JSON value) per column of kColumns; the candidate's side is empty / null
// when it never reached the target.
using Cell = std::pair<std::string, nlohmann::json>;
std::vector<Cell> RowCells(const Run& base, const Run& cand, const std::string& metric, const FlopsComparison& c) {
  const bool r = c.reached, has_best = std::isfinite(c.candidate_best.value);
  const Cell none = {"", nullptr};
  const auto count = [&](int64_t v) { return r ? Cell{Whole(v), v} : none; };
  const auto whole = [&](double v) { return r ? Cell{Whole(v), v} : none; };
  const auto real = [&](double v) { return r ? Cell{Real(v), RealOrNull(v)} : none; };
  return {{base.label, base.label},
          {base.path, base.path},
          {cand.label, cand.label},
          {cand.path, cand.path},
          {metric, metric},
          {Real(c.target), c.target},
          {Whole(c.baseline.step), c.baseline.step},
          {Whole(c.baseline.tokens), c.baseline.tokens},
          {Whole(c.baseline.flops_cumulative), c.baseline.flops_cumulative},
          {r ? "true" : "false", r},
          count(c.candidate.step),
          count(c.candidate.tokens),
          whole(c.candidate.flops_cumulative),
          real(c.candidate.value),
          {Real(c.candidate_best.value), RealOrNull(c.candidate_best.value)},
          has_best ? Cell{Whole(c.candidate_best.step), c.candidate_best.step} : none,
          whole(c.flops_saved()),
          real(c.flops_saved_pct()),
          real(c.steps_ratio()),
          real(c.tokens_ratio())};
}

void PrintTable(const std::vector<Run>& baselines, const Run& cand, const std::string& metric,
                const std::vector<FlopsComparison>& rows) {
  std::printf("flops-compare: %s; candidate %s (%s)\n", metric.c_str(), cand.label.c_str(), cand.path.c_str());
  std::printf("baseline: its final record; candidate: its first record with %s <= the baseline's final value\n\n",
              metric.c_str());
  const int w = std::max<int>(10, static_cast<int>(metric.size()));
  std::printf("%-24s %*s | %10s %12s %11s | %10s %12s %11s %*s | %-26s %11s\n", "baseline", w, metric.c_str(),
              "base step", "base tokens", "base FLOPs", "cand step", "cand tokens", "cand FLOPs", w, metric.c_str(),
              "FLOPs saved", "steps ratio");
  for (size_t i = 0; i < rows.size(); ++i) {
    const FlopsComparison& c = rows[i];
    std::printf("%-24s %*.4f | %10lld %12lld %11.4g | ", baselines[i].label.c_str(), w, c.target,
                static_cast<long long>(c.baseline.step), static_cast<long long>(c.baseline.tokens),
                c.baseline.flops_cumulative);
    if (c.reached) {
      const std::string saved = absl::StrFormat("%.2f%% (%.4g)", c.flops_saved_pct(), c.flops_saved());
      std::printf("%10lld %12lld %11.4g %*.4f | %-26s %10.3fx\n", static_cast<long long>(c.candidate.step),
                  static_cast<long long>(c.candidate.tokens), c.candidate.flops_cumulative, w, c.candidate.value,
                  saved.c_str(), c.steps_ratio());
    } else if (std::isfinite(c.candidate_best.value)) {
      std::printf("not reached: best %.4f at step %lld\n", c.candidate_best.value,
                  static_cast<long long>(c.candidate_best.step));
    } else {
      std::printf("not reached: no finite %s\n", metric.c_str());
    }
  }
}

nlohmann::ordered_json RunJson(const Run& run, const std::string& role) {
  nlohmann::ordered_json j;
  j["label"] = run.label;
  j["path"] = run.path;
  j["role"] = role;
  j["final_value"] = RealOrNull(run.points.back().value);
  std::vector<int64_t> steps, tokens;
  std::vector<double> flops;
  nlohmann::json values = nlohmann::json::array();
  for (const MetricPoint& p : run.points) {
    steps.push_back(p.step);
    tokens.push_back(p.tokens);
    flops.push_back(p.flops_cumulative);
    values.push_back(RealOrNull(p.value));
  }
  j["step"] = steps;
  j["tokens"] = tokens;
  j["flops"] = flops;
  j["value"] = values;
  return j;
}

}  // namespace

absl::Status RunFlopsCompareCommand(const std::vector<std::string>& args) {
  LRKV_TRY_ASSIGN(const NamedArgs named, ParseNamedArgs(args, {"baseline", "candidate", "metric", "out"}, kUsage));
  std::vector<std::string> baseline_paths;
  std::string candidate_path, metric = "val_loss", prefix;
  for (const auto& [name, value] : named) {
    if (name == "baseline") baseline_paths.push_back(value);
    if (name == "candidate") candidate_path = value;
    if (name == "metric") metric = value;
    if (name == "out") prefix = value;
  }
  LRKV_REQUIRE(!baseline_paths.empty() && !candidate_path.empty(),
               "flops-compare needs --baseline=FILE (one or more) and --candidate=FILE\nusage: ", kUsage);
  LRKV_REQUIRE(!metric.empty(), "--metric must not be empty");
  if (prefix.empty()) {
    prefix = (std::filesystem::path(candidate_path).parent_path() / "flops_compare").string();
  }

  std::vector<Run> baselines;
  for (const std::string& path : baseline_paths) {
    Run run{RunLabel(path, baselines), path, {}};
    LRKV_TRY_ASSIGN(run.points, ReadMetricSeries(path, metric));
    baselines.push_back(std::move(run));
  }
  Run cand{RunLabel(candidate_path, baselines), candidate_path, {}};
  LRKV_TRY_ASSIGN(cand.points, ReadMetricSeries(candidate_path, metric));
  std::vector<FlopsComparison> rows;
  for (const Run& base : baselines) {
    LRKV_TRY_ASSIGN(FlopsComparison c, CompareToBaseline(base.points, cand.points, base.path));
    rows.push_back(c);
  }
  PrintTable(baselines, cand, metric, rows);

  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(prefix).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  LRKV_REQUIRE(!ec, "cannot create ", parent.string(), ": ", ec.message());
  std::string csv;
  for (const char* col : kColumns) absl::StrAppend(&csv, csv.empty() ? "" : ",", col);
  csv += "\n";
  nlohmann::ordered_json json;
  json["metric"] = metric;
  json["candidate"] = cand.label;
  json["rows"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto cells = RowCells(baselines[i], cand, metric, rows[i]);
    nlohmann::ordered_json row;
    for (size_t k = 0; k < cells.size(); ++k) {
      absl::StrAppend(&csv, k ? "," : "", CsvField(cells[k].first));
      row[kColumns[k]] = cells[k].second;
    }
    csv += "\n";
    json["rows"].push_back(row);
  }
  json["runs"] = nlohmann::ordered_json::array();
  for (const Run& base : baselines) json["runs"].push_back(RunJson(base, "baseline"));
  json["runs"].push_back(RunJson(cand, "candidate"));
  const std::string csv_path = prefix + ".csv", json_path = prefix + ".json", png_path = prefix + ".png";
  LRKV_TRY(WriteTextFile(csv_path, csv));
  LRKV_TRY(WriteTextFile(json_path, json.dump() + "\n"));
  std::printf("wrote %s, %s\n", csv_path.c_str(), json_path.c_str());

  std::string why;
  LRKV_TRY_ASSIGN(const bool plotted, RunPlotScript("plot_flops_compare.py", {json_path, png_path}, &why));
  if (plotted) {
    std::printf("wrote %s\n", png_path.c_str());
  } else {
    std::fprintf(stderr, "lrkv flops-compare: warning: no plot (%s); the CSV and JSON are written\n", why.c_str());
  }
  return absl::OkStatus();
}

}  // namespace lrkv
