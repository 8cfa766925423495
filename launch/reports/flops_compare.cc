#include "launch/reports/flops_compare.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A baseline's final record, which every comparison measures against: its value must be finite and
// the ratios against its FLOPs, step and tokens defined.
absl::StatusOr<MetricPoint> BaselineFinal(const std::vector<MetricPoint>& baseline, const std::string& path) {
  LRKV_REQUIRE(!baseline.empty(), path, ": no records to compare against");
  const MetricPoint& last = baseline.back();
  const std::string where = absl::StrCat(path, ":", last.line);
  LRKV_REQUIRE(std::isfinite(last.value), where, ": the baseline's final value is not finite");
  LRKV_REQUIRE(last.flops_cumulative > 0 && last.step > 0 && last.tokens > 0, where,
               ": the baseline's final record needs positive flops_cumulative, step and tokens");
  return last;
}

// The candidate seeds at one target.
std::vector<SeedCrossing> CrossingsAt(const std::vector<SeedRun>& candidate, double target, double base_flops,
                                      double base_steps) {
  std::vector<SeedCrossing> out;
  for (const SeedRun& run : candidate) {
    SeedCrossing s;
    if (const std::optional<Crossing> at = InterpolatedCrossing(run.points, target)) {
      s.reached = true;
      s.at = *at;
      s.saving_pct = 100.0 * (1.0 - at->flops / base_flops);
      s.steps_ratio = at->step / base_steps;
    }
    out.push_back(s);
  }
  return out;
}

// The interval of `field` over the seeds when every seed reached; n = 0 otherwise.
template <typename F>
Interval OverSeeds(const std::vector<SeedCrossing>& seeds, F field) {
  std::vector<double> xs;
  for (const SeedCrossing& s : seeds) {
    if (!s.reached) return Interval{0, kNaN, kNaN, kNaN, kNaN};
    xs.push_back(field(s));
  }
  return MeanInterval(xs);
}

}  // namespace

absl::StatusOr<FlopsComparison> CompareToBaseline(const std::vector<MetricPoint>& baseline,
                                                  const std::vector<MetricPoint>& candidate,
                                                  const std::string& baseline_path) {
  LRKV_REQUIRE(!candidate.empty(), "CompareToBaseline needs a non-empty candidate series");
  FlopsComparison c;
  LRKV_TRY_ASSIGN(c.baseline, BaselineFinal(baseline, baseline_path));
  c.target = c.baseline.value;
  c.candidate_best.value = kNaN;
  for (const MetricPoint& p : candidate) {
    if (!std::isfinite(p.value)) continue;
    if (!(p.value >= c.candidate_best.value)) c.candidate_best = p;  // also replaces the initial NaN
    if (!c.reached && p.value <= c.target) {
      c.reached = true;
      c.candidate = p;
    }
  }
  return c;
}

std::optional<Crossing> InterpolatedCrossing(const std::vector<MetricPoint>& series, double target) {
  const MetricPoint* prev = nullptr;
  for (const MetricPoint& p : series) {
    if (!std::isfinite(p.value)) continue;
    if (p.value <= target) {
      const auto at = [](const MetricPoint& q) {
        return Crossing{double(q.step), double(q.tokens), q.flops_cumulative};
      };
      if (prev == nullptr) return at(p);
      // prev->value > target >= p.value, so 0 < f <= 1.
      const double f = (prev->value - target) / (prev->value - p.value);
      const Crossing a = at(*prev), b = at(p);
      return Crossing{a.step + f * (b.step - a.step), a.tokens + f * (b.tokens - a.tokens),
                      a.flops + f * (b.flops - a.flops)};
    }
    prev = &p;
  }
  return std::nullopt;
}

absl::StatusOr<GroupComparison> CompareSeedGroups(const std::vector<SeedRun>& baseline,
                                                  const std::vector<SeedRun>& candidate) {
  LRKV_REQUIRE(!baseline.empty() && !candidate.empty(), "CompareSeedGroups needs runs on both sides");
  GroupComparison g;
  std::vector<double> base_final, cand_final;
  double flops = 0, steps = 0;
  for (const SeedRun& run : baseline) {
    LRKV_TRY_ASSIGN(const MetricPoint last, BaselineFinal(run.points, run.path));
    base_final.push_back(last.value);
    flops += last.flops_cumulative;
    steps += double(last.step);
  }
  for (const SeedRun& run : candidate) {
    double last = kNaN;  // its final finite value
    for (const MetricPoint& p : run.points) last = std::isfinite(p.value) ? p.value : last;
    LRKV_REQUIRE(std::isfinite(last), run.path, ": no finite value of the metric");
    cand_final.push_back(last);
  }
  g.baseline_flops = flops / double(baseline.size());
  g.baseline_steps = steps / double(baseline.size());
  g.baseline_final = MeanInterval(base_final);
  g.candidate_final = MeanInterval(cand_final);
  g.final_difference = WelchDifference(base_final, cand_final);
  g.target = g.baseline_final.mean;
  g.target_lo = g.baseline_final.lo;
  g.target_hi = g.baseline_final.hi;

  g.seeds = CrossingsAt(candidate, g.target, g.baseline_flops, g.baseline_steps);
  g.reached = static_cast<int>(std::count_if(g.seeds.begin(), g.seeds.end(), [](auto& s) { return s.reached; }));
  const auto saving = [](const SeedCrossing& s) { return s.saving_pct; };
  const auto ratio = [](const SeedCrossing& s) { return s.steps_ratio; };
  g.saving_pct = OverSeeds(g.seeds, saving);
  g.steps_ratio = OverSeeds(g.seeds, ratio);
  g.saving_pct_low = g.saving_pct_high = g.steps_ratio_low = g.steps_ratio_high = kNaN;
  if (std::isfinite(g.target_lo)) {  // NaN comparisons below leave NaN bounds
    const std::vector<SeedCrossing> hard = CrossingsAt(candidate, g.target_lo, g.baseline_flops, g.baseline_steps);
    const std::vector<SeedCrossing> easy = CrossingsAt(candidate, g.target_hi, g.baseline_flops, g.baseline_steps);
    g.saving_pct_low = OverSeeds(hard, saving).lo;
    g.steps_ratio_high = OverSeeds(hard, ratio).hi;
    g.saving_pct_high = OverSeeds(easy, saving).hi;
    g.steps_ratio_low = OverSeeds(easy, ratio).lo;
  }
  if (g.reached < static_cast<int>(g.seeds.size())) {
    g.verdict = "not reached";
  } else if (baseline.size() < 2 || candidate.size() < 2) {
    g.verdict = "one seed";
  } else if (g.saving_pct_low > 0) {
    g.verdict = "saving";
  } else if (g.saving_pct_high < 0) {
    g.verdict = "more compute";
  } else {
    g.verdict = "within noise";
  }
  return g;
}

}  // namespace lrkv
