// lrkv flops-compare --baseline=METRICS.jsonl [--baseline=...] --candidate=METRICS.jsonl
//                    [--metric=val_loss] [--out=PREFIX]
// For each baseline: the training FLOPs (steps, tokens) the candidate needs to reach the baseline's
// final value of the metric, as a table on stdout, PREFIX.csv, PREFIX.json and a plot PREFIX.png.
// A path with * ? [ is a glob (quoted, so lrkv expands it): the runs it matches are one seed group,
// e.g. --baseline='runs/mha-s*/metrics.jsonl'; the comparison of groups (launch/reports/
// flops_compare.h: mean target, saving with a 95% interval, a verdict) is then the table, and the
// JSON's "groups" (always written, one per baseline) carries it.
#include <glob.h>

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
    "lrkv flops-compare --baseline=METRICS.jsonl|'GLOB' [--baseline=...] --candidate=METRICS.jsonl|'GLOB' "
    "[--metric=val_loss] [--out=PREFIX]";

struct Run {
  std::string label;  // the run directory's name, e.g. brown-tiny-mha
  std::string path;
  std::vector<MetricPoint> points;
};

// The runs one --baseline or --candidate names: a file, or every file a glob matches (seeds).
struct Group {
  std::string label;  // the run's label, or the glob's directory part, e.g. mha-s*
  std::vector<Run> runs;
};

bool IsGlob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// The files `pattern` matches, sorted; the pattern itself when it has no glob characters (so a
// missing file is reported by the reader).
absl::StatusOr<std::vector<std::string>> ExpandPattern(const std::string& pattern) {
  if (!IsGlob(pattern)) return std::vector<std::string>{pattern};
  glob_t g{};
  const int rc = glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> paths(g.gl_pathv, g.gl_pathv + (rc == 0 ? g.gl_pathc : 0));
  globfree(&g);
  LRKV_REQUIRE(rc == 0 || rc == GLOB_NOMATCH, "cannot expand ", pattern, " (glob error ", rc, ")");
  LRKV_REQUIRE(!paths.empty(), "no metrics file matches ", pattern);
  return paths;  // glob sorts them
}

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

nlohmann::ordered_json RunJson(const Run& run, const std::string& role, const std::string& group) {
  nlohmann::ordered_json j;
  j["label"] = run.label;
  j["path"] = run.path;
  j["role"] = role;
  j["group"] = group;
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

nlohmann::ordered_json IntervalJson(const Interval& i) {
  nlohmann::ordered_json j;
  j["n"] = i.n, j["mean"] = RealOrNull(i.mean), j["sd"] = RealOrNull(i.sd);
  j["lo"] = RealOrNull(i.lo), j["hi"] = RealOrNull(i.hi);
  return j;
}

nlohmann::ordered_json GroupJson(const Group& base, const Group& cand, const GroupComparison& g) {
  nlohmann::ordered_json j;
  j["baseline"] = base.label;
  j["candidate"] = cand.label;
  const auto paths = [](const Group& grp) {
    std::vector<std::string> p;
    for (const Run& r : grp.runs) p.push_back(r.path);
    return p;
  };
  j["baseline_runs"] = paths(base);
  j["candidate_runs"] = paths(cand);
  j["target"] = RealOrNull(g.target), j["target_lo"] = RealOrNull(g.target_lo);
  j["target_hi"] = RealOrNull(g.target_hi);
  j["baseline_flops"] = g.baseline_flops, j["baseline_steps"] = g.baseline_steps;
  j["baseline_final"] = IntervalJson(g.baseline_final);
  j["candidate_final"] = IntervalJson(g.candidate_final);
  j["final_difference"] = IntervalJson(g.final_difference);
  j["seeds"] = nlohmann::ordered_json::array();
  for (size_t k = 0; k < g.seeds.size(); ++k) {
    const SeedCrossing& s = g.seeds[k];
    nlohmann::ordered_json e;
    e["path"] = cand.runs[k].path, e["reached"] = s.reached;
    e["crossing_step"] = s.reached ? nlohmann::json(s.at.step) : nlohmann::json(nullptr);
    e["crossing_tokens"] = s.reached ? nlohmann::json(s.at.tokens) : nlohmann::json(nullptr);
    e["crossing_flops"] = s.reached ? nlohmann::json(s.at.flops) : nlohmann::json(nullptr);
    e["saving_pct"] = s.reached ? RealOrNull(s.saving_pct) : nlohmann::json(nullptr);
    e["steps_ratio"] = s.reached ? RealOrNull(s.steps_ratio) : nlohmann::json(nullptr);
    j["seeds"].push_back(e);
  }
  j["reached"] = g.reached;
  j["saving_pct"] = IntervalJson(g.saving_pct);
  j["saving_pct_low"] = RealOrNull(g.saving_pct_low), j["saving_pct_high"] = RealOrNull(g.saving_pct_high);
  j["steps_ratio"] = IntervalJson(g.steps_ratio);
  j["steps_ratio_low"] = RealOrNull(g.steps_ratio_low), j["steps_ratio_high"] = RealOrNull(g.steps_ratio_high);
  j["verdict"] = g.verdict;
  return j;
}

// "mean [lo, hi]" with `digits` decimals ("?" for an undefined bound), or "-" without a mean.
std::string WithInterval(double mean, double lo, double hi, int digits, bool sign = false) {
  const auto num = [&](double v) {
    if (!std::isfinite(v)) return std::string("?");
    return sign ? absl::StrFormat("%+.*f", digits, v) : absl::StrFormat("%.*f", digits, v);
  };
  if (!std::isfinite(mean)) return "-";
  std::string s = num(mean);
  if (std::isfinite(lo) || std::isfinite(hi)) absl::StrAppend(&s, " [", num(lo), ", ", num(hi), "]");
  return s;
}

void PrintGroupTable(const std::vector<Group>& baselines, const Group& cand, const std::string& metric,
                     const std::vector<GroupComparison>& groups) {
  std::printf("flops-compare: %s; candidate %s (%zu runs)\n", metric.c_str(), cand.label.c_str(), cand.runs.size());
  std::printf("target: the mean of the baseline seeds' final values; candidate seeds at its interpolated crossing;\n"
              "[95%% intervals]; the saving's interval also spans the target's own interval\n\n");
  std::printf("%-16s %3s %-26s %3s %-26s %-26s %7s %-30s %-28s %s\n", "baseline", "n", "baseline final", "n",
              "candidate final", "difference (Welch)", "reached", "FLOPs saved %", "steps ratio", "verdict");
  for (size_t i = 0; i < groups.size(); ++i) {
    const GroupComparison& g = groups[i];
    const Interval &b = g.baseline_final, &c = g.candidate_final, &d = g.final_difference;
    const std::string saving = g.reached == int(g.seeds.size())
                                   ? WithInterval(g.saving_pct.mean, g.saving_pct_low, g.saving_pct_high, 1)
                                   : "-";
    const std::string ratio = g.reached == int(g.seeds.size())
                                  ? WithInterval(g.steps_ratio.mean, g.steps_ratio_low, g.steps_ratio_high, 3)
                                  : "-";
    std::printf("%-16s %3d %-26s %3d %-26s %-26s %3d/%-3zu %-30s %-28s %s\n", baselines[i].label.c_str(), b.n,
                WithInterval(b.mean, b.lo, b.hi, 4).c_str(), c.n, WithInterval(c.mean, c.lo, c.hi, 4).c_str(),
                WithInterval(d.mean, d.lo, d.hi, 4, true).c_str(), g.reached, g.seeds.size(), saving.c_str(),
                ratio.c_str(), g.verdict.c_str());
  }
}

absl::StatusOr<Group> ReadGroup(const std::string& pattern, const std::string& metric,
                                const std::vector<Group>& taken) {
  Group g;
  LRKV_TRY_ASSIGN(const std::vector<std::string> paths, ExpandPattern(pattern));
  std::vector<Run> all;  // labels unique over every run read so far
  for (const Group& t : taken) all.insert(all.end(), t.runs.begin(), t.runs.end());
  for (const std::string& path : paths) {
    Run run{RunLabel(path, all), path, {}};
    LRKV_TRY_ASSIGN(run.points, ReadMetricSeries(path, metric));
    all.push_back(run);
    g.runs.push_back(std::move(run));
  }
  g.label = g.runs.front().label;
  if (IsGlob(pattern)) {
    const std::filesystem::path p(pattern);
    g.label = p.parent_path().filename().string();
    if (g.label.empty() || !IsGlob(g.label)) g.label = p.filename().string();
  }
  return g;
}

std::vector<SeedRun> SeedRuns(const Group& g) {
  std::vector<SeedRun> out;
  for (const Run& r : g.runs) out.push_back({r.path, r.points});
  return out;
}

}  // namespace

absl::Status RunFlopsCompareCommand(const std::vector<std::string>& args) {
  LRKV_TRY_ASSIGN(const NamedArgs named, ParseNamedArgs(args, {"baseline", "candidate", "metric", "out"}, kUsage));
  std::vector<std::string> baseline_patterns, candidate_patterns;
  std::string metric = "val_loss", prefix;
  for (const auto& [name, value] : named) {
    if (name == "baseline") baseline_patterns.push_back(value);
    if (name == "candidate") candidate_patterns.push_back(value);
    if (name == "metric") metric = value;
    if (name == "out") prefix = value;
  }
  LRKV_REQUIRE(!baseline_patterns.empty() && candidate_patterns.size() == 1,
               "flops-compare needs --baseline=FILE (one or more) and one --candidate=FILE\nusage: ", kUsage);
  LRKV_REQUIRE(!metric.empty(), "--metric must not be empty");

  std::vector<Group> baselines;
  for (const std::string& pattern : baseline_patterns) {
    LRKV_TRY_ASSIGN(Group g, ReadGroup(pattern, metric, baselines));
    baselines.push_back(std::move(g));
  }
  LRKV_TRY_ASSIGN(const Group cand, ReadGroup(candidate_patterns[0], metric, baselines));
  if (prefix.empty()) {
    prefix = (std::filesystem::path(cand.runs.front().path).parent_path() / "flops_compare").string();
  }
  // Rows: every (baseline run, candidate run) pair, first record at or below the baseline's final.
  std::vector<const Run*> row_base, row_cand;
  std::vector<FlopsComparison> rows;
  std::vector<GroupComparison> groups;
  bool seeds = cand.runs.size() > 1;
  for (const Group& base : baselines) {
    seeds = seeds || base.runs.size() > 1;
    for (const Run& b : base.runs) {
      for (const Run& c : cand.runs) {
        LRKV_TRY_ASSIGN(FlopsComparison cmp, CompareToBaseline(b.points, c.points, b.path));
        rows.push_back(cmp);
        row_base.push_back(&b);
        row_cand.push_back(&c);
      }
    }
    LRKV_TRY_ASSIGN(GroupComparison g, CompareSeedGroups(SeedRuns(base), SeedRuns(cand)));
    groups.push_back(std::move(g));
  }
  if (seeds) {
    PrintGroupTable(baselines, cand, metric, groups);
  } else {
    std::vector<Run> base_runs;
    for (const Group& g : baselines) base_runs.push_back(g.runs.front());
    PrintTable(base_runs, cand.runs.front(), metric, rows);
  }

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
    const auto cells = RowCells(*row_base[i], *row_cand[i], metric, rows[i]);
    nlohmann::ordered_json row;
    for (size_t k = 0; k < cells.size(); ++k) {
      absl::StrAppend(&csv, k ? "," : "", CsvField(cells[k].first));
      row[kColumns[k]] = cells[k].second;
    }
    csv += "\n";
    json["rows"].push_back(row);
  }
  json["groups"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < groups.size(); ++i) json["groups"].push_back(GroupJson(baselines[i], cand, groups[i]));
  json["runs"] = nlohmann::ordered_json::array();
  for (const Group& base : baselines) {
    for (const Run& r : base.runs) json["runs"].push_back(RunJson(r, "baseline", base.label));
  }
  for (const Run& r : cand.runs) json["runs"].push_back(RunJson(r, "candidate", cand.label));
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
