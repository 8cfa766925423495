#include "launch/reports/flops_compare.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<FlopsComparison> CompareToBaseline(const std::vector<MetricPoint>& baseline,
                                                  const std::vector<MetricPoint>& candidate,
                                                  const std::string& baseline_path) {
  LRKV_REQUIRE(!baseline.empty() && !candidate.empty(), "CompareToBaseline needs two non-empty series");
  FlopsComparison c;
  c.baseline = baseline.back();
  c.target = c.baseline.value;
  const std::string where = absl::StrCat(baseline_path, ":", c.baseline.line);
  LRKV_REQUIRE(std::isfinite(c.target), where, ": the baseline's final value is not finite");
  // Ratios against the baseline's final record must be defined.
  LRKV_REQUIRE(c.baseline.flops_cumulative > 0 && c.baseline.step > 0 && c.baseline.tokens > 0, where,
               ": the baseline's final record needs positive flops_cumulative, step and tokens");
  c.candidate_best.value = std::numeric_limits<double>::quiet_NaN();
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

}  // namespace lrkv
