// For the head-diversity diagnostic (model/head_diversity.h, `lrkv analyze heads`): every core head's
// query and key as linear maps of the layer's normalised input x, q_h = x wq[h] and k_h = x wk[h],
// each (d, Dqk). A normalisation inside a variant (MLA's and MLRA's latent RMSNorm, the query
// latent's) counts as its gain alone: the token's statistics are not a weight. QK-norm and RoPE are
// left out, as in the paper's analysis. A variant gives this TP rank's heads (whole at tp 1).
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Dense>

#include "absl/status/statusor.h"
#include "model/parameter.h"

namespace lrkv {

struct HeadMaps {
  std::vector<Eigen::MatrixXd> wq, wk;  // per core head, (d, Dqk) each
};

// A parameter's local block read back in double as a (rows, numel / rows) matrix, row-major order.
absl::StatusOr<Eigen::MatrixXd> ParameterMatrix(const Parameter& p, int64_t rows);

// Columns [h w, (h + 1) w) of m: head h of a (rows, H w) projection.
inline Eigen::MatrixXd HeadColumns(const Eigen::MatrixXd& m, int64_t h, int64_t w) {
  return m.middleCols(h * w, w);
}

}  // namespace lrkv
