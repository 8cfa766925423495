// Compute to reach a baseline's result: where a candidate run first gets a metric down to the
// baseline's final value, and how many training FLOPs (steps, tokens) that took against the baseline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "launch/reports/metrics_reader.h"
#include "launch/reports/seed_statistics.h"

namespace lrkv {

struct FlopsComparison {
  double target = 0;          // the baseline's final value of the metric
  MetricPoint baseline;       // the baseline's final record with the metric
  bool reached = false;       // the candidate got to <= target
  MetricPoint candidate;      // its first record at <= target (only when reached)
  MetricPoint candidate_best; // its lowest finite value (the first such record); value NaN if none
  // Only when reached:
  double flops_saved() const { return baseline.flops_cumulative - candidate.flops_cumulative; }
  double flops_saved_pct() const { return 100.0 * (1.0 - candidate.flops_cumulative / baseline.flops_cumulative); }
  double steps_ratio() const { return double(candidate.step) / double(baseline.step); }
  double tokens_ratio() const { return double(candidate.tokens) / double(baseline.tokens); }
};

// Lower is better (losses). Fails when the baseline's final value is not finite or its final record
// has no positive FLOPs, step and tokens (nothing to compare against); `baseline_path` names it.
absl::StatusOr<FlopsComparison> CompareToBaseline(const std::vector<MetricPoint>& baseline,
                                                  const std::vector<MetricPoint>& candidate,
                                                  const std::string& baseline_path);

// A position in training between two records.
struct Crossing {
  double step = 0, tokens = 0, flops = 0;
};

// Where `series` first gets to <= target, interpolated linearly (step, tokens and FLOPs alike)
// between that record and the finite one before it, so the crossing is resolved finer than the
// evaluation interval; the first record itself when it is the first finite one. nullopt if never.
std::optional<Crossing> InterpolatedCrossing(const std::vector<MetricPoint>& series, double target);

// One configuration trained with several seeds.
struct SeedRun {
  std::string path;
  std::vector<MetricPoint> points;
};

// One candidate seed against a target.
struct SeedCrossing {
  bool reached = false;
  Crossing at;                // the interpolated crossing (when reached)
  double saving_pct = 0;      // 100 (1 - its FLOPs at the crossing / the baseline's FLOPs)
  double steps_ratio = 0;     // its step at the crossing / the baseline's steps
};

// A candidate seed group against a baseline seed group. The target is the mean of the baseline
// seeds' final values, with its own 95% interval [target_lo, target_hi]; the budget is the mean of
// their final cumulative FLOPs (and steps). Each candidate seed is measured at the interpolated
// crossing of the mean target; the saving's interval is the Student-t interval over candidate seeds
// widened by the target's: its low end from the savings at target_lo (harder to reach), its high
// end from those at target_hi. A bound is NaN when a seed does not reach that target or there are
// fewer than two seeds on either side.
struct GroupComparison {
  Interval baseline_final, candidate_final;  // the seeds' final values
  Interval final_difference;                 // candidate - baseline, Welch
  double target = 0, target_lo = 0, target_hi = 0;
  double baseline_flops = 0, baseline_steps = 0;
  std::vector<SeedCrossing> seeds;  // per candidate seed, at `target`
  int reached = 0;                  // candidate seeds that reach `target`
  Interval saving_pct, steps_ratio; // over the candidate seeds when all reach `target`, else n = 0
  double saving_pct_low = 0, saving_pct_high = 0;    // widened by the target's interval
  double steps_ratio_low = 0, steps_ratio_high = 0;
  // "saving" (saving_pct_low > 0), "more compute" (saving_pct_high < 0), "within noise" (the
  // interval holds 0), "not reached" (some seed never reaches the target), "one seed" (no interval).
  std::string verdict;
};

// Fails as CompareToBaseline does for any baseline run.
absl::StatusOr<GroupComparison> CompareSeedGroups(const std::vector<SeedRun>& baseline,
                                                  const std::vector<SeedRun>& candidate);

}  // namespace lrkv
