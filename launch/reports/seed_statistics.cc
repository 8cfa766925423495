#include "launch/reports/seed_statistics.h"

#include <cmath>
#include <limits>
#include <numeric>

#include <boost/math/distributions/students_t.hpp>

namespace lrkv {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Mean(const std::vector<double>& xs) {
  return xs.empty() ? kNaN : std::accumulate(xs.begin(), xs.end(), 0.0) / double(xs.size());
}

// Sample variance (n - 1); NaN below two values.
double Variance(const std::vector<double>& xs) {
  if (xs.size() < 2) return kNaN;
  const double m = Mean(xs);
  double s = 0;
  for (double x : xs) s += (x - m) * (x - m);
  return s / double(xs.size() - 1);
}

}  // namespace

double StudentT975(double df) {
  const boost::math::students_t dist(df);
  return boost::math::quantile(boost::math::complement(dist, 0.025));
}

Interval MeanInterval(const std::vector<double>& xs) {
  Interval r;
  r.n = static_cast<int>(xs.size());
  r.mean = Mean(xs);
  r.sd = std::sqrt(Variance(xs));
  if (r.n < 2) {
    r.lo = r.hi = kNaN;
    return r;
  }
  const double half = StudentT975(r.n - 1) * r.sd / std::sqrt(double(r.n));
  r.lo = r.mean - half;
  r.hi = r.mean + half;
  return r;
}

Interval WelchDifference(const std::vector<double>& a, const std::vector<double>& b) {
  Interval r;
  r.n = static_cast<int>(a.size() + b.size());
  r.mean = Mean(b) - Mean(a);
  if (a.size() < 2 || b.size() < 2) {
    r.sd = r.lo = r.hi = kNaN;
    return r;
  }
  const double va = Variance(a) / double(a.size()), vb = Variance(b) / double(b.size());
  r.sd = std::sqrt(va + vb);
  if (r.sd == 0) {  // identical values on both sides: the difference is exact
    r.lo = r.hi = r.mean;
    return r;
  }
  const double df = (va + vb) * (va + vb) / (va * va / double(a.size() - 1) + vb * vb / double(b.size() - 1));
  const double half = StudentT975(df) * r.sd;
  r.lo = r.mean - half;
  r.hi = r.mean + half;
  return r;
}

}  // namespace lrkv
