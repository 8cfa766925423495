#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/status.h"

namespace lrkv {

absl::Status ValidateSampling(const SamplingOptions& o) {
  LRKV_REQUIRE(std::isfinite(o.temperature) && o.temperature >= 0, "--temperature must be >= 0, got ", o.temperature);
  LRKV_REQUIRE(o.top_k >= 0, "--top_k must be >= 0 (0: every token), got ", o.top_k);
  LRKV_REQUIRE(o.top_p > 0 && o.top_p <= 1, "--top_p must be in (0, 1], got ", o.top_p);
  return absl::OkStatus();
}

int32_t SampleToken(const std::vector<double>& logits, const SamplingOptions& o, double uniform) {
  const int64_t v = static_cast<int64_t>(logits.size());
  if (o.temperature == 0) return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  // Candidates by decreasing logit (ties by index), cut to top_k.
  std::vector<int32_t> order(v);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const int64_t k = o.top_k > 0 ? std::min(o.top_k, v) : v;
  std::vector<double> p(k);
  const double top = logits[order[0]];
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += (p[i] = std::exp((logits[order[i]] - top) / o.temperature));
  // The nucleus: the fewest leading candidates whose probability reaches top_p.
  int64_t kept = k;
  double mass = 0;
  for (int64_t i = 0; i < k; ++i) {
    mass += p[i] / sum;
    if (mass >= o.top_p) {
      kept = i + 1;
      break;
    }
  }
  double kept_sum = 0;
  for (int64_t i = 0; i < kept; ++i) kept_sum += p[i];
  double target = uniform * kept_sum;
  for (int64_t i = 0; i < kept; ++i) {
    target -= p[i];
    if (target < 0) return order[i];
  }
  return order[kept - 1];
}

}  // namespace lrkv
