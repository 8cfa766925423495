// Choosing the next token from a row of logits, as `lrkv generate` does: greedy at temperature 0
// (the lowest index among equal maxima), else a draw from softmax(logits / temperature) restricted
// to the top_k most likely tokens (0: all) and then to the smallest set whose probability reaches
// top_p (1: all), renormalised. The draw is a function of `uniform` in [0, 1) only, so the same
// seed gives the same text on every rank and at every TP layout.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv {

struct SamplingOptions {
  double temperature = 1.0;  // >= 0
  int64_t top_k = 0;         // >= 0
  double top_p = 1.0;        // in (0, 1]
};

// InvalidArgument naming the option when one is out of range.
absl::Status ValidateSampling(const SamplingOptions& options);

// The token drawn from `logits` (one per vocabulary entry).
int32_t SampleToken(const std::vector<double>& logits, const SamplingOptions& options, double uniform);

}  // namespace lrkv
