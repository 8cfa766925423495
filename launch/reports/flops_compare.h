// Compute to reach a baseline's result: where a candidate run first gets a metric down to the
// baseline's final value, and how many training FLOPs (steps, tokens) that took against the baseline.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "launch/reports/metrics_reader.h"

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

}  // namespace lrkv
