// Reads one metric's series back from a `metrics.jsonl` written by `lrkv train`, with the position in
// training (step, tokens, cumulative FLOPs) of every record that has it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv {

struct MetricPoint {
  int line = 0;                   // 1-based line of the record in the file
  int64_t step = 0;
  int64_t tokens = 0;
  double flops_cumulative = 0;    // global training FLOPs so far (all ranks)
  double value = 0;               // NaN where the file has null (the run logged a non-finite value)
};

// The records of `path` that have the key `metric`, in file order. Errors name the file (and line):
// a missing file, a line that is not a JSON object, a record with the metric but without a numeric
// step, tokens or flops_cumulative, a metric that is neither a number nor null, and a file where no
// record has the metric. Blank lines are skipped.
absl::StatusOr<std::vector<MetricPoint>> ReadMetricSeries(const std::string& path, const std::string& metric);

}  // namespace lrkv
