#include "model/head_diversity.h"

#include <algorithm>
#include <cmath>

#include "runtime/status.h"

namespace lrkv {

Eigen::MatrixXd BilinearFormGram(const HeadMaps& maps) {
  const int64_t h = static_cast<int64_t>(maps.wq.size());
  Eigen::MatrixXd gram(h, h);
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = i; j < h; ++j) {
      const Eigen::MatrixXd kk = maps.wk[i].transpose() * maps.wk[j];  // (Dqk, Dqk)
      const Eigen::MatrixXd qq = maps.wq[i].transpose() * maps.wq[j];
      gram(i, j) = gram(j, i) = kk.cwiseProduct(qq).sum();
    }
  }
  return gram;
}

Spectrum SpectrumOf(const Eigen::MatrixXd& symmetric) {
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(symmetric, Eigen::EigenvaluesOnly);
  std::vector<double> values;
  double sum = 0;
  for (int64_t i = 0; i < solver.eigenvalues().size(); ++i) {
    values.push_back(std::max(0.0, solver.eigenvalues()[i]));  // round-off below 0 is 0
    sum += values.back();
  }
  std::sort(values.rbegin(), values.rend());
  Spectrum s;
  double entropy = 0, cumulative = 0;
  for (double v : values) {
    const double f = sum > 0 ? v / sum : 0.0;
    s.fractions.push_back(f);
    if (f > 0) entropy -= f * std::log(f);
    if (sum > 0 && cumulative < 0.9 - 1e-12) {  // within round-off of 90% counts as reached
      cumulative += f;
      ++s.pcs_for_90;
    }
  }
  s.effective_rank = sum > 0 ? std::exp(entropy) : 0.0;
  return s;
}

HeadDiversity DiversityOfGram(const Eigen::MatrixXd& cosine) {
  HeadDiversity d;
  d.heads = cosine.rows();
  d.gram = cosine;
  const Eigen::MatrixXd j =
      Eigen::MatrixXd::Identity(d.heads, d.heads) - Eigen::MatrixXd::Constant(d.heads, d.heads, 1.0 / double(d.heads));
  d.uncentred = SpectrumOf(cosine);
  d.centred = SpectrumOf(j * cosine * j);
  if (d.heads > 1) d.mean_off_diagonal = (cosine.sum() - cosine.trace()) / double(d.heads * (d.heads - 1));
  return d;
}

absl::StatusOr<HeadDiversity> HeadDiversityOf(const HeadMaps& maps) {
  LRKV_REQUIRE(!maps.wq.empty() && maps.wq.size() == maps.wk.size(), "HeadDiversityOf: ", maps.wq.size(),
               " query maps and ", maps.wk.size(), " key maps");
  const Eigen::MatrixXd gram = BilinearFormGram(maps);
  const Eigen::VectorXd norms = gram.diagonal().cwiseSqrt();
  for (int64_t i = 0; i < norms.size(); ++i) {
    LRKV_REQUIRE(norms[i] > 0, "head ", i, "'s bilinear form W_Q W_K^T is zero: nothing to compare");
  }
  return DiversityOfGram(norms.cwiseInverse().asDiagonal() * gram * norms.cwiseInverse().asDiagonal());
}

}  // namespace lrkv
