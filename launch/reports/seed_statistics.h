// Statistics over seeds: a mean with its 95% Student-t interval, and the difference of two means
// with Welch's interval (unequal variances, Welch-Satterthwaite degrees of freedom). Runs of one
// configuration with different seeds are treated as independent samples.
#pragma once

#include <vector>

namespace lrkv {

struct Interval {
  int n = 0;
  double mean = 0;  // NaN when n = 0
  double sd = 0;    // sample standard deviation (n - 1); NaN when n < 2
  double lo = 0, hi = 0;  // 95% interval of the mean; NaN when n < 2 (no spread to estimate)
};

// Mean of `xs` with mean -+ t(0.975, n - 1) sd / sqrt(n).
Interval MeanInterval(const std::vector<double>& xs);

// mean(b) - mean(a) with Welch's 95% interval; sd is the standard error of the difference. NaN
// bounds when either side has fewer than 2 values. n is a.size() + b.size().
Interval WelchDifference(const std::vector<double>& a, const std::vector<double>& b);

// The two-sided 95% quantile t(0.975, df) of Student's t (df > 0, not necessarily whole).
double StudentT975(double df);

}  // namespace lrkv
