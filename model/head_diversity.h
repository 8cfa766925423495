// The LRKV paper's head-diversity diagnostic (its section 4.3; docs/head-diversity.md), on weights
// alone. Per layer, head h's bilinear form A_h = W^Q_h (W^K_h)^T (d, d) from the variant's
// QueryKeyMaps (model/attention/head_maps.h); the Gram matrix of the forms under the Frobenius
// inner product, normalised to cosine similarities G; its eigenvalues as fractions of variance,
// uncentred (G) and centred (J G J, J = I - 11^T / H: kernel PCA), negatives clipped to 0; the
// effective rank exp(-sum v log v); the principal components that explain 90%; the mean
// off-diagonal similarity.
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Dense>

#include "absl/status/statusor.h"
#include "model/attention/head_maps.h"

namespace lrkv {

struct Spectrum {
  std::vector<double> fractions;  // eigenvalues / their sum, descending (all 0 when the sum is 0)
  double effective_rank = 0;      // exp(entropy of the fractions); 0 when the sum is 0
  int pcs_for_90 = 0;             // fewest leading components with cumulative fraction >= 0.9
};

struct HeadDiversity {
  int64_t heads = 0;
  Eigen::MatrixXd gram;            // (H, H) cosine similarities, diagonal 1
  Spectrum uncentred, centred;
  double mean_off_diagonal = 0;    // mean of G over i != j (0 for one head)
};

// <A_i, A_j>_F for every pair, without forming a d x d matrix: the sum over (a, b) of
// (W^K_i^T W^K_j)_ab (W^Q_i^T W^Q_j)_ab.
Eigen::MatrixXd BilinearFormGram(const HeadMaps& maps);

// The spectrum of a symmetric positive semi-definite matrix.
Spectrum SpectrumOf(const Eigen::MatrixXd& symmetric);

// From a cosine-similarity Gram matrix.
HeadDiversity DiversityOfGram(const Eigen::MatrixXd& cosine);

// From a layer's maps; fails when a head's form is zero (no direction to compare).
absl::StatusOr<HeadDiversity> HeadDiversityOf(const HeadMaps& maps);

}  // namespace lrkv
