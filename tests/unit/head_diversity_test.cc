// The head-diversity diagnostic (model/head_diversity.h): its spectra on Gram matrices of known
// eigenvalues, the bilinear-form Gram against explicit d x d forms, and every variant's query and
// key maps (model/attention/head_maps.h) against what its own Forward computes.
#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "model/attention/attention_variant.h"
#include "model/config.h"
#include "model/head_diversity.h"
#include "tests/testing/model_testing.h"

namespace lrkv {
namespace {

double EntropyRank(const std::vector<double>& fractions) {
  double e = 0;
  for (double f : fractions) e -= f > 0 ? f * std::log(f) : 0.0;
  return std::exp(e);
}

// G = (1 - rho) I + rho 11^T: eigenvalues 1 + (H - 1) rho once and 1 - rho (H - 1 times); centred,
// (1 - rho) J: 1 - rho (H - 1 times) and 0, so the centred effective rank is exactly H - 1.
TEST(HeadDiversity, EquicorrelatedGram) {
  const int h = 6;
  const double rho = 0.3;
  const Eigen::MatrixXd g = (1 - rho) * Eigen::MatrixXd::Identity(h, h) + rho * Eigen::MatrixXd::Ones(h, h);
  const HeadDiversity d = DiversityOfGram(g);
  const std::vector<double> want = {2.5 / 6, 0.7 / 6, 0.7 / 6, 0.7 / 6, 0.7 / 6, 0.7 / 6};
  ASSERT_EQ(d.uncentred.fractions.size(), 6u);
  for (int i = 0; i < h; ++i) EXPECT_NEAR(d.uncentred.fractions[i], want[i], 1e-12) << i;
  EXPECT_NEAR(d.uncentred.effective_rank, EntropyRank(want), 1e-12);
  EXPECT_EQ(d.uncentred.pcs_for_90, 6);  // cumulative 0.417, 0.533, 0.650, 0.767, 0.883, 1
  EXPECT_NEAR(d.centred.effective_rank, 5.0, 1e-9);
  EXPECT_EQ(d.centred.pcs_for_90, 5);    // 0.2 each: 0.8 after four
  EXPECT_NEAR(d.centred.fractions[5], 0.0, 1e-12);
  EXPECT_NEAR(d.mean_off_diagonal, rho, 1e-12);
}

// Identical heads (one direction): rank 1 uncentred, nothing left after centring.
TEST(HeadDiversity, IdenticalAndOrthogonalHeads) {
  const HeadDiversity same = DiversityOfGram(Eigen::MatrixXd::Ones(4, 4));
  EXPECT_NEAR(same.uncentred.effective_rank, 1.0, 1e-12);
  EXPECT_EQ(same.uncentred.pcs_for_90, 1);
  EXPECT_EQ(same.centred.effective_rank, 0.0);
  EXPECT_EQ(same.centred.pcs_for_90, 0);
  EXPECT_NEAR(same.mean_off_diagonal, 1.0, 1e-12);
  const HeadDiversity apart = DiversityOfGram(Eigen::MatrixXd::Identity(4, 4));
  EXPECT_NEAR(apart.uncentred.effective_rank, 4.0, 1e-12);
  EXPECT_NEAR(apart.centred.effective_rank, 3.0, 1e-12);
  EXPECT_EQ(apart.mean_off_diagonal, 0.0);
}

// Any symmetric PSD matrix Q diag(lambda) Q^T: fractions are lambda / sum, sorted.
TEST(HeadDiversity, SpectrumOfKnownEigenvalues) {
  std::mt19937 rng(7);
  std::normal_distribution<double> n01;
  Eigen::MatrixXd a(5, 5);
  for (int i = 0; i < 25; ++i) a.data()[i] = n01(rng);
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(a).householderQ();
  const Eigen::VectorXd lambda = (Eigen::VectorXd(5) << 0.5, 4.0, 0.0, 1.5, 2.0).finished();
  const Spectrum s = SpectrumOf(q * lambda.asDiagonal() * q.transpose());
  const std::vector<double> want = {4.0 / 8, 2.0 / 8, 1.5 / 8, 0.5 / 8, 0.0};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(s.fractions[i], want[i], 1e-12) << i;
  EXPECT_NEAR(s.effective_rank, EntropyRank(want), 1e-10);
  EXPECT_EQ(s.pcs_for_90, 3);  // 0.5, 0.75, 0.9375
}

// <A_i, A_j>_F computed from the d_h x d_h products equals trace(A_i^T A_j) of the d x d forms.
TEST(HeadDiversity, BilinearGramMatchesExplicitForms) {
  std::mt19937 rng(3);
  std::normal_distribution<double> n01;
  HeadMaps maps;
  for (int h = 0; h < 3; ++h) {
    Eigen::MatrixXd q(7, 2), k(7, 2);
    for (int i = 0; i < 14; ++i) q.data()[i] = n01(rng), k.data()[i] = n01(rng);
    maps.wq.push_back(q);
    maps.wk.push_back(k);
  }
  const Eigen::MatrixXd gram = BilinearFormGram(maps);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const Eigen::MatrixXd ai = maps.wq[i] * maps.wk[i].transpose(), aj = maps.wq[j] * maps.wk[j].transpose();
      EXPECT_NEAR(gram(i, j), (ai.transpose() * aj).trace(), 1e-10) << i << "," << j;
    }
  }
  const HeadDiversity d = HeadDiversityOf(maps).value();
  EXPECT_NEAR(d.gram(0, 1), gram(0, 1) / std::sqrt(gram(0, 0) * gram(1, 1)), 1e-12);
  EXPECT_NEAR(d.gram(2, 2), 1.0, 1e-12);
}

// Row t of `map` against the variant's output for the one-hot token e_t: parallel with a positive
// factor (a normalisation inside the variant scales a token's row), equal to it (factor 1) where
// the variant has no inner normalisation.
void ExpectRowsMatch(const Eigen::MatrixXd& map, const double* out, int64_t stride, int64_t cols, bool exact,
                     const std::string& what) {
  for (int64_t t = 0; t < map.rows(); ++t) {
    const Eigen::Map<const Eigen::VectorXd> got(out + t * stride, cols);
    const Eigen::VectorXd want = map.row(t).transpose();
    const double factor = got.dot(want) / want.squaredNorm();
    EXPECT_GT(factor, 0) << what << " token " << t;
    EXPECT_LT((got - factor * want).norm(), 1e-9 * (1 + got.norm())) << what << " token " << t;
    if (exact) {
      EXPECT_NEAR(factor, 1.0, 1e-9) << what << " token " << t;
    }
  }
}

class HeadMapsOfVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(HeadMapsOfVariant, MatchForwardOnOneHotTokens) {
  absl::StatusOr<RunConfig> c = testing::LoadReferenceCase(GetParam());
  ASSERT_TRUE(c.ok()) << c.status();
  const ModelConfig& m = c->model();
  ParameterSet params(DType::kF64, Device::kCpu);
  auto variant = MakeAttentionVariant(m, "layers.0.attn.", params);
  ASSERT_TRUE(variant.ok()) << variant.status();
  ASSERT_TRUE(params.Initialize(5).ok());
  const AttentionDims dims = (*variant)->dims();
  const int64_t d = m.d_model(), dq = dims.qk_dim, dr = dims.rope_dims;
  Tensor x = Tensor::Zeros({1, d, d}, DType::kF64).value();  // token t is e_t
  for (int64_t t = 0; t < d; ++t) x.data<double>()[t * d + t] = 1.0;
  Tensor q = Tensor::Empty({1, d, dims.heads, dq}, DType::kF64).value();
  Tensor k = Tensor::Empty({1, d, dims.kv_heads, dq}, DType::kF64).value();
  Tensor v = Tensor::Empty({1, d, dims.kv_heads, dims.v_dim}, DType::kF64).value();
  std::unique_ptr<VariantSaved> saved;
  ASSERT_TRUE((*variant)->Forward(x, q, k, v, saved).ok());
  const absl::StatusOr<HeadMaps> maps = (*variant)->QueryKeyMaps();
  ASSERT_TRUE(maps.ok()) << maps.status();
  ASSERT_EQ(static_cast<int64_t>(maps->wq.size()), dims.heads);
  // Without a latent (MLA, MLRA) every map is the weight product itself; with one, each token's row
  // is scaled by that latent's RMS statistic. The RoPE key never goes through a latent.
  const bool latent = m.attention() == MLA || m.attention() == MLRA;
  const bool q_latent = latent && (m.attention() == MLA ? m.mla().q_lora_rank() : m.mlra().q_lora_rank()) > 0;
  const KvGroups& g = dims.kv_groups;
  const int64_t group = g.group > 0 ? g.group : dims.heads / dims.kv_heads;
  for (int64_t h = 0; h < dims.heads; ++h) {
    const std::string head = absl::StrCat(GetParam(), " head ", h);
    ExpectRowsMatch(maps->wq[h], q.data<double>() + h * dq, dims.heads * dq, dq, !q_latent, head + " query");
    const double* kh = k.data<double>() + (g.q_head_offset + h) / group * dq;
    ExpectRowsMatch(maps->wk[h].leftCols(dq - (latent ? dr : 0)), kh, dims.kv_heads * dq, dq - (latent ? dr : 0),
                    !latent, head + " key");
    if (latent) ExpectRowsMatch(maps->wk[h].rightCols(dr), kh + dq - dr, dims.kv_heads * dq, dr, true, head + " rope key");
  }
}

INSTANTIATE_TEST_SUITE_P(ReferenceCases, HeadMapsOfVariant, ::testing::ValuesIn(testing::ReferenceCases()),
                         testing::CaseName);

}  // namespace
}  // namespace lrkv
