// Every op's backward against central finite differences in float64 (relative error < 1e-6), plus
// forward checks against direct formulas, FLOP counts and argument errors.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <cmath>
#include <limits>
#include <ostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parallel/vocab_parallel_cross_entropy.h"
#include "runtime/flop_counter.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/add.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/backend.h"
#include "runtime/ops/cast.h"
#include "runtime/ops/cpu/online_softmax.h"
#include "runtime/ops/cpu/simd_vec.h"
#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/embedding.h"
#include "runtime/ops/factored_decode_attention.h"
#include "runtime/ops/gemm.h"
#include "runtime/ops/head_slice.h"
#include "runtime/ops/latent_decode_attention.h"
#include "runtime/ops/layernorm.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/optimizer_ops.h"
#include "runtime/ops/packed_linear.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/ops/rope.h"
#include "runtime/status.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

using testing::At;
using testing::GradCase;
using testing::MaxGradientError;
using testing::Random;
using testing::ZerosLike;
using Grads = absl::StatusOr<std::vector<Tensor>>;
constexpr double kTol = 1e-6;

Tensor New(const Shape& s, DType t = DType::kF64) { return Tensor::Zeros(s, t).value(); }

TEST(OpsGradient, Linear) {
  GradCase c{{Random({5, 4}, 1), Random({4, 3}, 2)},
             [](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor y = New({5, 3});
               LRKV_TRY(LinearForward(in[0], in[1], y, FlopCategory::kMlp));
               return y;
             },
             [](const std::vector<Tensor>& in, const Tensor& dy) -> Grads {
               Tensor dx = ZerosLike(in[0]), dw = ZerosLike(in[1]);
               LRKV_TRY(LinearBackward(dy, in[0], in[1], &dx, dw, FlopCategory::kMlp));
               return std::vector<Tensor>{dx, dw};
             }};
  EXPECT_LT(MaxGradientError(c), kTol);
}

TEST(OpsGradient, Embedding) {
  const Tensor tokens = testing::Tokens({6}, 5, 3);
  GradCase c{{Random({5, 4}, 1)},
             [&](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor y = New({6, 4});
               LRKV_TRY(EmbeddingForward(tokens, in[0], y));
               return y;
             },
             [&](const std::vector<Tensor>& in, const Tensor& dy) -> Grads {
               Tensor dw = ZerosLike(in[0]);
               LRKV_TRY(EmbeddingBackward(tokens, dy, dw));
               return std::vector<Tensor>{dw};
             }};
  EXPECT_LT(MaxGradientError(c), kTol);
}

// inputs: x, and w when with_weight (QK-norm has none).
void CheckRmsNorm(bool with_weight) {
  GradCase c{{Random({3, 8}, 1)},
             [](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor y = New({3, 8}), r = New({3});
               LRKV_TRY(RmsNormForward(in[0], in.size() > 1 ? &in[1] : nullptr, 1e-5, y, r));
               return y;
             },
             [](const std::vector<Tensor>& in, const Tensor& dy) -> Grads {
               const Tensor* w = in.size() > 1 ? &in[1] : nullptr;
               Tensor y = New({3, 8}), r = New({3}), dx = ZerosLike(in[0]), dw = New({8});
               LRKV_TRY(RmsNormForward(in[0], w, 1e-5, y, r));
               LRKV_TRY(RmsNormBackward(dy, in[0], w, r, dx, w ? &dw : nullptr));
               if (w == nullptr) return std::vector<Tensor>{dx};
               return std::vector<Tensor>{dx, dw};
             }};
  if (with_weight) c.inputs.push_back(Random({8}, 2));
  EXPECT_LT(MaxGradientError(c), kTol);
}
TEST(OpsGradient, RmsNorm) { CheckRmsNorm(true); }
TEST(OpsGradient, QkNormIsWeightFreeRmsNorm) { CheckRmsNorm(false); }

TEST(OpsGradient, LayerNorm) {
  GradCase c{{Random({3, 8}, 1), Random({8}, 2), Random({8}, 3)},
             [](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor y = New({3, 8}), m = New({3}), r = New({3});
               LRKV_TRY(LayerNormForward(in[0], in[1], in[2], 1e-5, y, m, r));
               return y;
             },
             [](const std::vector<Tensor>& in, const Tensor& dy) -> Grads {
               Tensor y = New({3, 8}), m = New({3}), r = New({3});
               Tensor dx = ZerosLike(in[0]), dw = ZerosLike(in[1]), db = ZerosLike(in[2]);
               LRKV_TRY(LayerNormForward(in[0], in[1], in[2], 1e-5, y, m, r));
               LRKV_TRY(LayerNormBackward(dy, in[0], in[1], m, r, dx, dw, db));
               return std::vector<Tensor>{dx, dw, db};
             }};
  EXPECT_LT(MaxGradientError(c), kTol);
}

void CheckRope(int64_t rope_dims) {
  GradCase c{{Random({2, 5, 3, 8}, 1)},
             [=](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor y = New(in[0].shape());
               LRKV_TRY(RopeForward(in[0], rope_dims, 10000.0, y));
               return y;
             },
             [=](const std::vector<Tensor>& in, const Tensor& dy) -> Grads {
               Tensor dx = ZerosLike(in[0]);
               LRKV_TRY(RopeBackward(dy, rope_dims, 10000.0, dx));
               return std::vector<Tensor>{dx};
             }};
  EXPECT_LT(MaxGradientError(c), kTol);
}
TEST(OpsGradient, RopeFullHead) { CheckRope(8); }
// Decoding rotates new rows at their positions: rows [3, 7) alone from position 3 are the full
// tensor's rows [3, 7).
TEST(OpsForward, RopeFromAFirstPosition) {
  const Tensor x = Random({1, 7, 2, 6}, 4);
  Tensor all = New({1, 7, 2, 6}, DType::kF64), tail = New({1, 4, 2, 6}, DType::kF64);
  ASSERT_TRUE(RopeForward(x, 4, 100.0, all).ok());
  Tensor x_tail = New({1, 4, 2, 6}, DType::kF64);
  for (int64_t i = 0; i < 4 * 12; ++i) testing::Set(x_tail, i, At(x, 3 * 12 + i));
  ASSERT_TRUE(RopeForward(x_tail, 4, 100.0, tail, /*first_position=*/3).ok());
  for (int64_t i = 0; i < 4 * 12; ++i) EXPECT_NEAR(At(tail, i), At(all, 3 * 12 + i), 1e-15) << i;
  EXPECT_FALSE(RopeForward(x_tail, 4, 100.0, tail, -1).ok());
}
TEST(OpsGradient, RopePartialHead) { CheckRope(4); }

TEST(OpsForward, RopeRotatesByPositionTimesFrequency) {
  Tensor x = New({1, 3, 1, 2});
  for (int t = 0; t < 3; ++t) x.data<double>()[t * 2] = 1.0;  // (1, 0) at every position
  Tensor y = New(x.shape());
  ASSERT_TRUE(RopeForward(x, 2, 10000.0, y).ok());
  for (int t = 0; t < 3; ++t) {  // frequency 1 for the single pair: angle = t
    EXPECT_NEAR(y.data<double>()[t * 2], std::cos(t), 1e-12);
    EXPECT_NEAR(y.data<double>()[t * 2 + 1], std::sin(t), 1e-12);
  }
}

void CheckAttention(int64_t h, int64_t hk, int64_t dqk, int64_t dv) {
  const int64_t b = 2, t = 4;
  const double scale = 1.0 / std::sqrt(double(dqk));
  GradCase c{{Random({b, t, h, dqk}, 1), Random({b, t, hk, dqk}, 2), Random({b, t, hk, dv}, 3)},
             [=](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor o = New({b, t, h, dv}), p = New({b, h, t});
               LRKV_TRY(CausalAttentionForward(in[0], in[1], in[2], scale, o, p));
               return o;
             },
             [=](const std::vector<Tensor>& in, const Tensor& dout) -> Grads {
               Tensor o = New({b, t, h, dv}), p = New({b, h, t});
               LRKV_TRY(CausalAttentionForward(in[0], in[1], in[2], scale, o, p));
               Tensor dq = ZerosLike(in[0]), dk = ZerosLike(in[1]), dvv = ZerosLike(in[2]);
               LRKV_TRY(CausalAttentionBackward(dout, in[0], in[1], in[2], p, scale, dq, dk, dvv));
               return std::vector<Tensor>{dq, dk, dvv};
             }};
  EXPECT_LT(MaxGradientError(c), kTol);
}
TEST(OpsGradient, AttentionPerHead) { CheckAttention(3, 3, 4, 4); }
TEST(OpsGradient, AttentionGrouped) { CheckAttention(4, 2, 4, 4); }
TEST(OpsGradient, AttentionSingleKvHead) { CheckAttention(3, 1, 4, 4); }
TEST(OpsGradient, AttentionDifferentQkAndVWidths) { CheckAttention(2, 2, 6, 3); }

// Heads [h0, h0 + n) of a (B, T, H, D) tensor, as a (B, T, n, D) tensor.
Tensor HeadBlock(const Tensor& x, int64_t h0, int64_t n) {
  const int64_t rows = x.dim(0) * x.dim(1), h = x.dim(2), d = x.dim(3);
  Tensor out = New({x.dim(0), x.dim(1), n, d});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n * d; ++i) out.data<double>()[r * n * d + i] = x.data<double>()[(r * h + h0) * d + i];
  return out;
}

// Tensor parallelism with replicated KV heads (3 KV heads do not split over 2 ranks): each rank
// runs its 3 of the 6 query heads against all KV heads, the second rank's heads straddling two
// groups. Outputs and dq are the whole run's head blocks; dk, dv sum over the ranks to the whole.
TEST(OpsForward, AttentionQueryHeadBlockReadsReplicatedKvHeads) {
  const int64_t b = 2, t = 3, h = 6, hk = 3, d = 4;
  Tensor q = Random({b, t, h, d}, 1), k = Random({b, t, hk, d}, 2), v = Random({b, t, hk, d}, 3);
  Tensor dout = Random({b, t, h, d}, 4);
  Tensor o = New({b, t, h, d}), p = New({b, h, t}), dq = New(q.shape()), dk = New(k.shape()), dv = New(v.shape());
  ASSERT_TRUE(CausalAttentionForward(q, k, v, 0.5, o, p).ok());
  ASSERT_TRUE(CausalAttentionBackward(dout, q, k, v, p, 0.5, dq, dk, dv).ok());
  Tensor dk_sum = ZerosLike(dk), dv_sum = ZerosLike(dv);
  for (const int64_t h0 : {0, 3}) {
    const KvGroups groups{h / hk, h0};
    Tensor ql = HeadBlock(q, h0, 3), dl = HeadBlock(dout, h0, 3);
    Tensor ol = New(ql.shape()), pl = New({b, 3, t}), dql = New(ql.shape()), dkl = New(k.shape()), dvl = New(v.shape());
    ASSERT_TRUE(CausalAttentionForward(ql, k, v, 0.5, ol, pl, groups).ok());
    ASSERT_TRUE(CausalAttentionBackward(dl, ql, k, v, pl, 0.5, dql, dkl, dvl, groups).ok());
    EXPECT_LT(testing::RelativeError(ol, HeadBlock(o, h0, 3)), 1e-14);
    EXPECT_LT(testing::RelativeError(dql, HeadBlock(dq, h0, 3)), 1e-14);
    for (int64_t i = 0; i < dk.numel(); ++i) {
      dk_sum.data<double>()[i] += dkl.data<double>()[i];
      dv_sum.data<double>()[i] += dvl.data<double>()[i];
    }
  }
  EXPECT_LT(testing::RelativeError(dk_sum, dk), 1e-14);
  EXPECT_LT(testing::RelativeError(dv_sum, dv), 1e-14);
}

// Decoding: the last n queries over all T keys give the full causal attention's last n rows, and
// count the pairs they compute.
TEST(OpsForward, AttentionOfLastQueriesOverLongerKeysIsTheFullOnesLastRows) {
  const int64_t b = 2, t = 7, n = 3, h = 4, hk = 2, dqk = 5, dv = 3;
  const Tensor q = Random({b, t, h, dqk}, 1), k = Random({b, t, hk, dqk}, 2), v = Random({b, t, hk, dv}, 3);
  Tensor o = New({b, t, h, dv}, DType::kF64), lse = New({b, h, t}, DType::kF64);
  ASSERT_TRUE(CausalAttentionForward(q, k, v, 0.4, o, lse).ok());
  Tensor q_last = New({b, n, h, dqk}, DType::kF64), o_last = New({b, n, h, dv}, DType::kF64);
  Tensor lse_last = New({b, h, n}, DType::kF64);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t i = 0; i < n * h * dqk; ++i) testing::Set(q_last, bi * n * h * dqk + i, At(q, (bi * t + t - n) * h * dqk + i));
  FlopCounter counter;
  const CountFlopsInto counting(&counter);
  ASSERT_TRUE(CausalAttentionForward(q_last, k, v, 0.4, o_last, lse_last).ok());
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t i = 0; i < n * h * dv; ++i)
      EXPECT_EQ(At(o_last, bi * n * h * dv + i), At(o, (bi * t + t - n) * h * dv + i)) << bi << " " << i;
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(At(lse_last, (bi * h + hi) * n + i), At(lse, (bi * h + hi) * t + t - n + i));
  }
  const int64_t pairs = b * h * ((t - n + 1) + (t - n + 2) + (t - n + 3));
  EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kAttentionCore), 2 * pairs * (dqk + dv));
  Tensor too_long = New({b, t + 1, h, dqk}, DType::kF64), o_long = New({b, t + 1, h, dv}, DType::kF64);
  Tensor lse_long = New({b, h, t + 1}, DType::kF64);
  EXPECT_FALSE(CausalAttentionForward(too_long, k, v, 0.4, o_long, lse_long).ok());  // more queries than keys
}

// The one-query path (decoding's, flash-decoding style: position ranges merged at the end) against
// the full forward's last row, with query heads that are a TP rank's share of a grouped model
// (local head i reads KV head (i + 1) / 2; or, in groups of 4, (i + 2) / 4, where the chunks are
// tile products over each KV head's query heads). The longer contexts split into several ranges;
// the wider heads fill whole vectors of the tile products (12 heads padded to 16, Dv 24 = 16 + 8),
// in float too (20 heads: two vectors of columns).
struct OneQueryCase {
  int64_t tk, h, hk;
  KvGroups groups;
  int64_t dqk = 6, dv = 4;
  DType dtype = DType::kF64;  // float: within 1e-5 of the full forward, which computes differently
};
// Printed as its fields, not its bytes (gtest's listing and CTest's test names show it).
void PrintTo(const OneQueryCase& c, std::ostream* os) {
  *os << "Tk " << c.tk << ", H " << c.h << ", Hk " << c.hk << ", group " << c.groups.group << ", offset "
      << c.groups.q_head_offset << ", Dqk " << c.dqk << ", Dv " << c.dv << ", " << DTypeName(c.dtype);
}
class OneQueryDecoding : public ::testing::TestWithParam<OneQueryCase> {};

TEST_P(OneQueryDecoding, EqualsTheFullForwardsLastRow) {
  const int64_t b = 2, tk = GetParam().tk, h = GetParam().h, hk = GetParam().hk, dqk = GetParam().dqk;
  const int64_t dv = GetParam().dv;
  const KvGroups groups = GetParam().groups;
  const DType dt = GetParam().dtype;
  const double tolerance = dt == DType::kF64 ? 1e-12 : 1e-5;
  const Tensor q = Random({b, tk, h, dqk}, 4, dt), k = Random({b, tk, hk, dqk}, 5, dt);
  const Tensor v = Random({b, tk, hk, dv}, 6, dt);
  Tensor o = New({b, tk, h, dv}, dt), lse = New({b, h, tk}, dt);
  ASSERT_TRUE(CausalAttentionForward(q, k, v, 0.3, o, lse, groups).ok());
  Tensor q_last = New({b, 1, h, dqk}, dt), o_last = New({b, 1, h, dv}, dt);
  Tensor lse_last = New({b, h, 1}, dt);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t i = 0; i < h * dqk; ++i) testing::Set(q_last, bi * h * dqk + i, At(q, (bi * tk + tk - 1) * h * dqk + i));
  ASSERT_TRUE(CausalAttentionForward(q_last, k, v, 0.3, o_last, lse_last, groups).ok());
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi) {
      for (int64_t e = 0; e < dv; ++e)
        EXPECT_NEAR(At(o_last, (bi * h + hi) * dv + e), At(o, ((bi * tk + tk - 1) * h + hi) * dv + e),
                    tolerance)
            << bi << " " << hi << " " << e;
      EXPECT_NEAR(At(lse_last, bi * h + hi), At(lse, (bi * h + hi) * tk + tk - 1), tolerance);
    }
}

INSTANTIATE_TEST_SUITE_P(Contexts, OneQueryDecoding,
                         ::testing::Values(OneQueryCase{70, 3, 2, {2, 1}}, OneQueryCase{2100, 3, 2, {2, 1}},
                                           OneQueryCase{4500, 3, 2, {2, 1}}, OneQueryCase{70, 5, 2, {4, 2}},
                                           OneQueryCase{4500, 5, 2, {4, 2}},
                                           // every local head reads KV head 1; KV heads 0 and 2 none
                                           OneQueryCase{2100, 4, 3, {4, 4}},
                                           OneQueryCase{2100, 12, 1, {12, 0}, 40, 24},
                                           OneQueryCase{4500, 8, 2, {4, 0}, 32, 40},
                                           OneQueryCase{2100, 12, 1, {12, 0}, 40, 24, DType::kF32},
                                           OneQueryCase{4500, 20, 1, {20, 0}, 32, 40, DType::kF32},
                                           // the row loop (fewer than 4 query heads per KV head) with
                                           // heads wide enough for its vector loops and their tails:
                                           // GQA's groups of 3 (one cut by a TP offset), 2, and MHA
                                           OneQueryCase{2100, 6, 2, {3, 0}, 42, 38},
                                           OneQueryCase{2100, 6, 2, {3, 0}, 42, 38, DType::kF32},
                                           // one range of 64 + 6 positions: the rows past the last
                                           // four, whatever the thread count
                                           OneQueryCase{70, 6, 2, {3, 0}, 42, 38, DType::kF32},
                                           OneQueryCase{2100, 5, 2, {3, 1}, 42, 38},
                                           OneQueryCase{2100, 4, 2, {2, 0}, 42, 38, DType::kF32},
                                           OneQueryCase{2100, 4, 4, {1, 0}, 42, 38, DType::kF32}));

// The decoding kernels' vector exp (simd_vec.h, used by online_softmax.h) against std::exp over a softmax's inputs
// (x <= 0): within 2 ulp down to the smallest normal result, that result below it, -inf included
// (not 0 or a denormal: an absolute error under 1e-37 in float); exp(0) exactly 1.
template <typename T>
void CheckVectorExp(double lowest_normal) {
  constexpr int64_t kLanes = cpu::kSimdLanes<T>;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(-2 * lowest_normal, 0.0);
  double worst = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    T x[kLanes];
    for (T& xi : x) xi = T(trial < 10000 ? uniform(rng) / 64 : uniform(rng));  // half of them near 0
    // the first three trials' lane 0: 0, -inf and -1e-30 (a vector may have only 2 lanes)
    if (trial < 3) x[0] = trial == 0 ? T(0) : trial == 1 ? -std::numeric_limits<T>::infinity() : T(-1e-30);
    const cpu::SimdVec<T> e = cpu::ExpVec<T>(cpu::LoadVec(x));
    for (int64_t i = 0; i < kLanes; ++i) {
      const T want = std::exp(x[i]);
      if (x[i] < -lowest_normal) {
        EXPECT_LT(e[i], sizeof(T) == 4 ? 1e-37 : 1e-307) << x[i];
      } else {
        worst = std::max(worst, std::abs(double(e[i]) - double(want)) / double(want));
      }
    }
    if (trial == 0 || trial == 2) {
      EXPECT_EQ(e[0], T(1));
    }
  }
  EXPECT_LT(worst, 2 * std::numeric_limits<T>::epsilon());
  EXPECT_GT(worst, 0.0);  // the series is an approximation: an exact match would mean std::exp ran
}
TEST(CpuVectorExp, FloatWithinTwoUlpOfStdExp) { CheckVectorExp<float>(87.0); }
TEST(CpuVectorExp, DoubleWithinTwoUlpOfStdExp) { CheckVectorExp<double>(708.0); }

// The online softmax's step over a chunk of scores (online_softmax.h, every decoding kernel's): the
// running maximum covers every score, in whole vectors and in the tail past them (a score of 500
// overflows exp in float unless it is the maximum), l sums exp(score - m); a later chunk whose
// maximum is no higher adds to l and leaves o as it is, and one with a higher maximum rescales both.
TEST(OnlineSoftmax, TheMaximumCoversEveryScoreAndRescalesTheState) {
  for (int64_t keys : {5, 13, 64}) {
    for (int64_t at = 0; at < keys; ++at) {
      std::vector<float> p(keys);
      for (int64_t j = 0; j < keys; ++j) p[j] = 0.01f * float(j);
      p[at] = 500;
      float m = -std::numeric_limits<float>::infinity(), l = 0;
      std::vector<float> o = {0, 0, 0};
      cpu::AddChunk(p.data(), keys, m, l, o.data(), 3);
      ASSERT_EQ(m, 500.0f) << keys << " keys, the largest at " << at;
      double want = 0;
      for (int64_t j = 0; j < keys; ++j) want += std::exp((j == at ? 500.0 : 0.01 * j) - 500.0);
      EXPECT_NEAR(l, want, 1e-6) << keys << " keys, the largest at " << at;
    }
  }
  std::vector<float> o = {2, 4};
  float m = 1, l = 3;
  std::vector<float> lower = {0.5f, 1.0f, -2.0f};  // no higher than m: o stays, l gains the chunk's sum
  cpu::AddChunk(lower.data(), 3, m, l, o.data(), 2);
  EXPECT_EQ(m, 1.0f);
  EXPECT_NEAR(l, 3 + std::exp(-0.5) + 1 + std::exp(-3.0), 1e-6);
  EXPECT_EQ(o[0], 2.0f);
  const float l_before = l;
  std::vector<float> higher = {3.0f};  // a new maximum: l and o scaled by exp(1 - 3), then l + 1
  cpu::AddChunk(higher.data(), 1, m, l, o.data(), 2);
  EXPECT_EQ(m, 3.0f);
  EXPECT_NEAR(l, l_before * std::exp(-2.0) + 1, 1e-6);
  EXPECT_NEAR(o[0], 2 * std::exp(-2.0), 1e-6);
  EXPECT_NEAR(o[1], 4 * std::exp(-2.0), 1e-6);
}

// LRKV's decoding kernel against the ops it fuses: every position's K_h rebuilt (k_shared +
// latent_h B_h^T), QK-normed, rotated, then the causal core's last query over them, with the wide
// values [v_shared; v_latent_h]. Cases cover one and several key ranges (merged), a partial RoPE,
// no QK-norm, rank 0 (MQA) and f32.
struct FactoredCase {
  int64_t s, h, d, r, rope_dims;
  bool qk_norm;
  DType dtype;
  double tolerance;
};
void PrintTo(const FactoredCase& c, std::ostream* os) {
  *os << "S " << c.s << ", H " << c.h << ", D " << c.d << ", r " << c.r << ", RoPE " << c.rope_dims
      << (c.qk_norm ? ", QK-norm, " : ", ") << DTypeName(c.dtype);
}
class FactoredDecoding : public ::testing::TestWithParam<FactoredCase> {};

TEST_P(FactoredDecoding, EqualsRebuildNormRotateAttend) {
  const FactoredCase c = GetParam();
  const int64_t s = c.s, h = c.h, d = c.d, r = c.r, w = d + r;
  const DType dt = c.dtype;
  const Tensor q = Random({1, 1, h, d}, 1, dt), ks = Random({s, d}, 2, dt), kl = Random({s, h * r}, 3, dt);
  const Tensor bk = Random({h, d, r}, 4, dt), vs = Random({s, d}, 5, dt), vl = Random({s, h * r}, 6, dt);
  Tensor k = New({1, s, h, d}, dt), v = New({1, s, h, w}, dt);
  for (int64_t t = 0; t < s; ++t)
    for (int64_t hi = 0; hi < h; ++hi) {
      for (int64_t j = 0; j < d; ++j) {
        double sum = At(ks, t * d + j);
        for (int64_t a = 0; a < r; ++a) sum += At(kl, t * h * r + hi * r + a) * At(bk, (hi * d + j) * r + a);
        testing::Set(k, (t * h + hi) * d + j, sum);
        testing::Set(v, (t * h + hi) * w + j, At(vs, t * d + j));
      }
      for (int64_t a = 0; a < r; ++a) testing::Set(v, (t * h + hi) * w + d + a, At(vl, t * h * r + hi * r + a));
    }
  const double eps = 1e-5, theta = 500.0, scale = 0.3;
  if (c.qk_norm) {
    Tensor rstd = New({s * h}, dt);
    ASSERT_TRUE(RmsNormForward(k, nullptr, eps, k, rstd).ok());
  }
  ASSERT_TRUE(RopeForward(k, c.rope_dims, theta, k).ok());
  Tensor want = New({1, 1, h, w}, dt), want_lse = New({1, h, 1}, dt);
  ASSERT_TRUE(CausalAttentionForward(q, k, v, scale, want, want_lse).ok());

  Tensor got = New({1, 1, h, w}, dt), got_lse = New({1, h, 1}, dt);
  FlopCounter counter;
  {
    const CountFlopsInto counting(&counter);
    const KeyTransform keys{c.qk_norm, eps, c.rope_dims, theta};
    const absl::Status st = FactoredDecodeAttention(q, ks, kl, bk, vs, vl, keys, scale, got, got_lse);
    ASSERT_TRUE(st.ok()) << st;
  }
  EXPECT_LT(testing::RelativeError(got, want), c.tolerance);
  EXPECT_LT(testing::RelativeError(got_lse, want_lse), c.tolerance);
  EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kAttentionProjection), 2 * s * h * r * d);
  EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kAttentionCore), 2 * s * h * (d + w));
  Tensor wrong = New({1, 1, h, w + 1}, dt);  // o one column too wide
  EXPECT_FALSE(FactoredDecodeAttention(q, ks, kl, bk, vs, vl, {}, scale, wrong, got_lse).ok());
}

INSTANTIATE_TEST_SUITE_P(Cases, FactoredDecoding,
                         ::testing::Values(FactoredCase{5, 3, 8, 2, 8, true, DType::kF64, 1e-13},
                                           FactoredCase{1500, 2, 6, 3, 4, false, DType::kF64, 1e-13},
                                           FactoredCase{2100, 2, 8, 0, 8, true, DType::kF64, 1e-13},
                                           FactoredCase{1100, 4, 16, 5, 16, true, DType::kF32, 1e-5},
                                           // columns in whole register blocks of two vectors, one
                                           // vector and single columns left over, with 64-byte
                                           // (AVX-512) or 32-byte vectors (AVX2) alike
                                           FactoredCase{1100, 3, 32, 5, 16, true, DType::kF64, 1e-13},
                                           FactoredCase{700, 2, 48, 7, 48, true, DType::kF32, 1e-5},
                                           FactoredCase{700, 2, 28, 7, 28, true, DType::kF32, 1e-5},
                                           // keys rebuilt and scored in registers (RebuildAndScore):
                                           // RoPE halves of whole vectors and a part before them of
                                           // whole vector pairs, at either vector width
                                           FactoredCase{900, 3, 64, 6, 32, true, DType::kF32, 1e-5},
                                           FactoredCase{900, 2, 64, 4, 64, false, DType::kF64, 1e-13},
                                           FactoredCase{1300, 2, 64, 3, 32, true, DType::kF64, 1e-13}));

// MLA's absorbed decoding kernel against the keys it never writes: every position's
// k_h = [alpha c_t W_h ; rope_t] (QK-normed when on) and values c_t, then the causal core's last
// query, the NoPE query q_n,h; the kernel gets it absorbed, [alpha q_n,h W_h^T ; q_r,h]. Cases
// cover one and several ranges (merged), no norm, and f32.
struct LatentCase {
  int64_t s, h, c, dn, dr;
  bool norm;
  DType dtype;
  double tolerance;
  int64_t blocks = 1;  // MLRA's latent blocks in one call (MLA: 1)
};
std::string LatentCaseName(const LatentCase& p) {
  return absl::StrCat("s", p.s, "_h", p.h, "_c", p.c, "_dn", p.dn, "_dr", p.dr, p.norm ? "_norm_" : "_",
                      DTypeName(p.dtype), "_blocks", p.blocks);
}
void PrintTo(const LatentCase& c, std::ostream* os) { *os << LatentCaseName(c); }
class LatentDecoding : public ::testing::TestWithParam<LatentCase> {};

// Each block's keys [alpha c_b,t W_b ; rope_t] and values c_b,t materialised, normed (with the
// norm) and attended by the same queries, block by block, against one call over all the blocks.
TEST_P(LatentDecoding, EqualsMaterialisedKeysNormAttend) {
  const LatentCase p = GetParam();
  const int64_t s = p.s, h = p.h, c = p.c, dn = p.dn, dr = p.dr, dk = dn + dr, nb = p.blocks, w = nb * c + dr;
  const DType dt = p.dtype;
  const double alpha = 1.7, eps = 1e-5, scale = 0.3;
  const Tensor q = Random({1, 1, h, dk}, 1, dt), rope = Random({s, dr}, 5, dt);
  // With the norm, each key's 1 / rms as the variants cache it: block b's at columns
  // [2 + b (h + 1), 2 + b (h + 1) + H) of a wider part, as MLRA's blocks share one.
  const int64_t ldg = nb * (h + 1) + 2;
  Tensor scales = Random({s, ldg}, 7, dt);
  std::vector<Tensor> latents;
  std::vector<int64_t> firsts;
  Tensor want = New({1, 1, h, nb * c}, dt), want_lse = New({1, h, nb}, dt), q_abs = New({1, 1, h, w}, dt);
  for (int64_t b = 0; b < nb; ++b) {
    const Tensor latent = Random({s, c}, 2 + 10 * b, dt), up = Random({c, h * dn}, 3 + 10 * b, dt);
    latents.push_back(latent);
    firsts.push_back(2 + b * (h + 1));
    Tensor k = New({1, s, h, dk}, dt), v = New({1, s, h, c}, dt);
    for (int64_t t = 0; t < s; ++t)
      for (int64_t hi = 0; hi < h; ++hi) {
        for (int64_t j = 0; j < dn; ++j) {
          double sum = 0;
          for (int64_t a = 0; a < c; ++a) sum += At(latent, t * c + a) * At(up, a * h * dn + hi * dn + j);
          testing::Set(k, (t * h + hi) * dk + j, alpha * sum);
        }
        for (int64_t j = 0; j < dr; ++j) testing::Set(k, (t * h + hi) * dk + dn + j, At(rope, t * dr + j));
        for (int64_t a = 0; a < c; ++a) testing::Set(v, (t * h + hi) * c + a, At(latent, t * c + a));
      }
    if (p.norm) {
      Tensor rstd = New({s * h}, dt);
      ASSERT_TRUE(RmsNormForward(k, nullptr, eps, k, rstd).ok());
      for (int64_t t = 0; t < s; ++t)
        for (int64_t hi = 0; hi < h; ++hi) testing::Set(scales, t * ldg + firsts[b] + hi, At(rstd, t * h + hi));
    }
    Tensor o = New({1, 1, h, c}, dt), lse = New({1, h, 1}, dt);
    ASSERT_TRUE(CausalAttentionForward(q, k, v, scale, o, lse).ok());
    for (int64_t hi = 0; hi < h; ++hi) {
      for (int64_t a = 0; a < c; ++a) testing::Set(want, (hi * nb + b) * c + a, At(o, hi * c + a));
      testing::Set(want_lse, hi * nb + b, At(lse, hi));
      for (int64_t a = 0; a < c; ++a) {  // the head's NoPE query mapped into block b
        double sum = 0;
        for (int64_t j = 0; j < dn; ++j) sum += At(q, hi * dk + j) * At(up, a * h * dn + hi * dn + j);
        testing::Set(q_abs, hi * w + b * c + a, alpha * sum);
      }
    }
  }
  for (int64_t hi = 0; hi < h; ++hi)
    for (int64_t j = 0; j < dr; ++j) testing::Set(q_abs, hi * w + nb * c + j, At(q, hi * dk + dn + j));
  const Tensor* keys = p.norm ? &scales : nullptr;
  Tensor got = New({1, 1, h, nb * c}, dt), got_lse = New({1, h, nb}, dt);
  FlopCounter counter;
  {
    const CountFlopsInto counting(&counter);
    const absl::Status st = LatentDecodeAttention(q_abs, latents, rope, keys, firsts, scale, got, got_lse);
    ASSERT_TRUE(st.ok()) << st;
  }
  EXPECT_LT(testing::RelativeError(got, want), p.tolerance);
  EXPECT_LT(testing::RelativeError(got_lse, want_lse), p.tolerance);
  // The RoPE part scored once for all the blocks
  EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kAttentionCore), 2 * s * h * (nb * 2 * c + dr));
  EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kAttentionProjection), 0);
  if (p.norm) {
    const Tensor few = Random({s - 1, ldg}, 4, dt);  // fewer scales than latents
    EXPECT_FALSE(LatentDecodeAttention(q_abs, latents, rope, &few, firsts, scale, got, got_lse).ok());
    std::vector<int64_t> past_w = firsts;
    past_w.back() = ldg - h + 1;
    EXPECT_FALSE(LatentDecodeAttention(q_abs, latents, rope, &scales, past_w, scale, got, got_lse).ok());
    const std::vector<int64_t> one_short(firsts.begin() + 1, firsts.end());  // a column for each block but one
    EXPECT_FALSE(LatentDecodeAttention(q_abs, latents, rope, &scales, one_short, scale, got, got_lse).ok());
  }
  const Tensor short_rope = Random({s - 1, dr}, 6, dt);  // fewer RoPE keys than latents
  EXPECT_FALSE(LatentDecodeAttention(q_abs, latents, short_rope, keys, firsts, scale, got, got_lse).ok());
  std::vector<Tensor> uneven = latents;
  uneven.back() = Random({s - 1, c}, 8, dt);  // a block with fewer rows than the others
  EXPECT_FALSE(LatentDecodeAttention(q_abs, uneven, rope, keys, firsts, scale, got, got_lse).ok());
  EXPECT_FALSE(LatentDecodeAttention(q_abs, {}, rope, keys, firsts, scale, got, got_lse).ok());
}

INSTANTIATE_TEST_SUITE_P(Cases, LatentDecoding,
                         ::testing::Values(LatentCase{7, 3, 5, 4, 2, true, DType::kF64, 1e-13},
                                           LatentCase{1600, 2, 6, 3, 4, true, DType::kF64, 1e-13},
                                           LatentCase{1300, 3, 6, 4, 2, false, DType::kF64, 1e-13},
                                           LatentCase{1100, 4, 16, 8, 4, true, DType::kF32, 1e-5},
                                           // 12 heads, as the decode benchmark's configs
                                           LatentCase{600, 12, 20, 8, 6, true, DType::kF64, 1e-13},
                                           LatentCase{700, 12, 48, 32, 16, true, DType::kF32, 1e-5},
                                           // MLRA's blocks: 4 (MLRA-4) and 2 (MLRA-2's groups), and
                                           // a block without a RoPE part
                                           LatentCase{900, 12, 16, 8, 6, true, DType::kF64, 1e-13, 4},
                                           LatentCase{500, 5, 9, 4, 4, false, DType::kF64, 1e-13, 2},
                                           LatentCase{1300, 12, 32, 16, 8, true, DType::kF32, 1e-5, 4},
                                           LatentCase{70, 3, 8, 4, 0, true, DType::kF64, 1e-13, 3}),
                         [](const ::testing::TestParamInfo<LatentCase>& info) { return LatentCaseName(info.param); });

TEST(OpsForward, AttentionIsCausalAndMatchesDirectSoftmax) {
  const int64_t t = 3, d = 2;
  Tensor q = Random({1, t, 1, d}, 1), k = Random({1, t, 1, d}, 2), v = Random({1, t, 1, d}, 3);
  Tensor o = New({1, t, 1, d}), lse = New({1, 1, t});
  ASSERT_TRUE(CausalAttentionForward(q, k, v, 0.5, o, lse).ok());
  for (int64_t i = 0; i < t; ++i) {
    std::vector<double> w(i + 1);
    double z = 0;
    for (int64_t j = 0; j <= i; ++j) {
      w[j] = std::exp(0.5 * (At(q, i * d) * At(k, j * d) + At(q, i * d + 1) * At(k, j * d + 1)));
      z += w[j];
    }
    for (int64_t c = 0; c < d; ++c) {
      double expect = 0;
      for (int64_t j = 0; j <= i; ++j) expect += w[j] / z * At(v, j * d + c);
      EXPECT_NEAR(At(o, i * d + c), expect, 1e-12);
    }
    EXPECT_NEAR(At(lse, i), std::log(z), 1e-12);  // the saved state: log of the softmax's denominator
  }
}

void CheckActivation(Activation act) {
  GradCase c{{Random({4, 5}, 1)},
             [=](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor y = New(in[0].shape());
               LRKV_TRY(ActivationForward(act, in[0], y));
               return y;
             },
             [=](const std::vector<Tensor>& in, const Tensor& dy) -> Grads {
               Tensor dx = ZerosLike(in[0]);
               LRKV_TRY(ActivationBackward(act, dy, in[0], dx));
               return std::vector<Tensor>{dx};
             }};
  EXPECT_LT(MaxGradientError(c), kTol);
}
TEST(OpsGradient, Gelu) { CheckActivation(Activation::kGelu); }
TEST(OpsGradient, ReluSquared) { CheckActivation(Activation::kReluSquared); }

TEST(OpsGradient, SwiGlu) {
  GradCase c{{Random({4, 5}, 1), Random({4, 5}, 2)},
             [](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor y = New(in[0].shape());
               LRKV_TRY(SwiGluForward(in[0], in[1], y));
               return y;
             },
             [](const std::vector<Tensor>& in, const Tensor& dy) -> Grads {
               Tensor dg = ZerosLike(in[0]), du = ZerosLike(in[1]);
               LRKV_TRY(SwiGluBackward(dy, in[0], in[1], dg, du));
               return std::vector<Tensor>{dg, du};
             }};
  EXPECT_LT(MaxGradientError(c), kTol);
}

TEST(OpsGradient, Add) {
  GradCase c{{Random({3, 4}, 1), Random({3, 4}, 2)},
             [](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor y = New(in[0].shape());
               LRKV_TRY(Add(in[0], in[1], y));
               return y;
             },
             [](const std::vector<Tensor>&, const Tensor& dy) -> Grads { return std::vector<Tensor>{dy, dy}; }};
  EXPECT_LT(MaxGradientError(c), kTol);
}

TEST(OpsGradient, CrossEntropy) {
  const Tensor targets = testing::Tokens({5}, 7, 4);
  // The scalar loss sum as a (1)-tensor output, so the checker differentiates it.
  GradCase c{{Random({5, 7}, 1)},
             [&](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
               Tensor lse = New({5}), y = New({1});
               double sum = 0;
               LRKV_TRY_ASSIGN(sum, VocabParallelCrossEntropyForward(nullptr, in[0], targets, 0, 7, lse));
               y.data<double>()[0] = sum;
               return y;
             },
             [&](const std::vector<Tensor>& in, const Tensor& dy) -> Grads {
               Tensor lse = New({5}), dz = ZerosLike(in[0]);
               LRKV_TRY(VocabParallelCrossEntropyForward(nullptr, in[0], targets, 0, 7, lse).status());
               LRKV_TRY(CrossEntropyBackward(in[0], targets, 0, lse, At(dy, 0), dz));
               return std::vector<Tensor>{dz};
             }};
  EXPECT_LT(MaxGradientError(c), kTol);
}

TEST(OpsForward, BatchedStridedGemmMatchesLoops) {
  // Per head h: C[:, h*4:(h+1)*4] = A[:, h*2:(h+1)*2] @ B[h]^T, the LRKV residual's shape.
  const int64_t n = 5, heads = 3, r = 2, dh = 4;
  Tensor a = Random({n, heads * r}, 1), b = Random({heads, dh, r}, 2), c = New({n, heads * dh});
  GemmArgs g;
  g.m = n, g.n = dh, g.k = r, g.trans_b = true, g.lda = heads * r, g.ldb = r, g.ldc = heads * dh;
  g.batch = heads, g.stride_a = r, g.stride_b = dh * r, g.stride_c = dh;
  ASSERT_TRUE(Gemm(a, b, c, g, FlopCategory::kAttentionProjection).ok());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < dh; ++j) {
        double s = 0;
        for (int64_t l = 0; l < r; ++l) s += At(a, i * heads * r + h * r + l) * At(b, (h * dh + j) * r + l);
        EXPECT_NEAR(At(c, i * heads * dh + h * dh + j), s, 1e-12);
      }
}

// Float GEMMs go to oneDNN or OpenBLAS by shape (runtime/ops/cpu/blas.cc); every path, with
// transposes, padded leading dimensions, batch strides and beta, against a double-precision loop.
// CTest also runs this under LRKV_CPU_GEMM=openblas and with a bad value (tests/unit/CMakeLists.txt).
TEST(OpsForward, FloatGemmMatchesDoubleOnEveryPath) {
  struct Case {
    int64_t m, n, k;
    bool ta, tb;
    double beta;
  };
  const Case cases[] = {
      {1, 70, 33, false, false, 0},   // one row: OpenBLAS's matrix-vector product
      {1, 70, 33, true, true, 1},     // one row, A stored transposed, accumulating
      {16, 1100, 1000, false, true, 0},  // B transposed and large, few rows: C^T as register tiles
      {20, 1100, 1000, true, true, 1},   // the same with A stored transposed, accumulating
      {40, 1100, 1000, true, true, 0},   // the same, three vectors of rows
      {4, 1100, 1000, false, true, 0.5}, // the same with fewer rows than half a vector: oneDNN's C^T
      {16, 300, 40, false, true, 0},     // B transposed and small: oneDNN
      {80, 90, 40, false, true, 1},      // B transposed, many rows: oneDNN
      {16, 300, 40, false, false, 1}, // oneDNN
      {70, 20, 50, true, false, 0},   // A transposed (a weight gradient's form)
      {33, 17, 9, true, true, 0.5},
  };
  for (const Case& c : cases) {
    const int64_t pad = 3, batch = 2;  // leading dimensions 3 wider than the stored rows
    const int64_t ra = c.ta ? c.k : c.m, ca = c.ta ? c.m : c.k, rb = c.tb ? c.n : c.k, cb = c.tb ? c.k : c.n;
    GemmArgs g;
    g.m = c.m, g.n = c.n, g.k = c.k, g.trans_a = c.ta, g.trans_b = c.tb, g.beta = c.beta, g.alpha = 0.75;
    g.lda = ca + pad, g.ldb = cb + pad, g.ldc = c.n + pad, g.batch = batch;
    g.stride_a = ra * g.lda, g.stride_b = rb * g.ldb, g.stride_c = c.m * g.ldc;
    Tensor a = Random({batch * g.stride_a}, 1, DType::kF32), b = Random({batch * g.stride_b}, 2, DType::kF32);
    Tensor out = Random({batch * g.stride_c}, 3, DType::kF32);
    const Tensor before = Random({batch * g.stride_c}, 3, DType::kF32);
    // beta = 0 must overwrite C whatever it holds, NaN included.
    if (c.beta == 0)
      for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = std::nanf("");
    const absl::Status s = Gemm(a, b, out, g, FlopCategory::kMlp);
    const char* env = std::getenv("LRKV_CPU_GEMM");
    if (env != nullptr && std::string(env) == "no-such-library") {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(s.message().find("LRKV_CPU_GEMM=no-such-library"), std::string::npos) << s.message();
      return;
    }
    ASSERT_TRUE(s.ok()) << s.message();
    for (int64_t h = 0; h < batch; ++h)
      for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < c.n; ++j) {
          double sum = 0, mag = 0;
          for (int64_t l = 0; l < c.k; ++l) {
            const double x = At(a, h * g.stride_a + (c.ta ? l * g.lda + i : i * g.lda + l));
            const double y = At(b, h * g.stride_b + (c.tb ? j * g.ldb + l : l * g.ldb + j));
            sum += x * y;
            mag += std::abs(x * y);
          }
          const int64_t at = h * g.stride_c + i * g.ldc + j;
          const double expect = 0.75 * sum + c.beta * At(before, at);
          EXPECT_NEAR(At(out, at), expect, 1e-6 * (mag + std::abs(At(before, at))))
              << "m=" << c.m << " n=" << c.n << " k=" << c.k << " ta=" << c.ta << " tb=" << c.tb << " at " << at;
        }
    // The padding between rows is not C's: left as it was (NaN where beta = 0).
    for (int64_t h = 0; h < batch; ++h)
      for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = c.n; j < g.ldc; ++j) {
          const int64_t at = h * g.stride_c + i * g.ldc + j;
          if (c.beta == 0) EXPECT_TRUE(std::isnan(At(out, at))) << at;
          else EXPECT_EQ(At(out, at), At(before, at)) << at;
        }
  }
}

// Decoding's packed linear weights (packed_linear.h): x W through the packed copy equals it through
// the GEMM, stored either way round, for row counts around whole vectors and panels cut short
// (`out` not a multiple of the panel's columns), in f32 and f64; each entry exactly once, counted
// as the same FLOPs.
TEST(OpsForward, PackedLinearEqualsLinear) {
  for (const DType dt : {DType::kF32, DType::kF64}) {
    const double tol = dt == DType::kF32 ? 1e-5 : 1e-13;
    for (const int64_t rows : {1, 4, 5, 8, 16, 17, 64})
      for (const int64_t in : {7, 33})
        for (const int64_t out : {int64_t{1}, kPackedPanelColumns - 1, kPackedPanelColumns, 2 * kPackedPanelColumns + 1, int64_t{50}})
          for (const bool transposed : {false, true}) {
            const std::string what = absl::StrCat(DTypeName(dt), " rows ", rows, " in ", in, " out ", out,
                                                  transposed ? " transposed" : "");
            Tensor x = Random({rows, in}, 1, dt), w = Random({in, out}, 2, dt), want = New({rows, out}, dt);
            ASSERT_TRUE(LinearForward(x, w, want, FlopCategory::kMlp).ok());
            Tensor stored = w;
            if (transposed) {  // the same W kept (out, in)
              stored = New({out, in}, dt);
              for (int64_t k = 0; k < in; ++k)
                for (int64_t j = 0; j < out; ++j) testing::Set(stored, j * in + k, At(w, k * out + j));
            }
            absl::StatusOr<Tensor> packed = PackLinearWeight(stored, transposed);
            ASSERT_TRUE(packed.ok()) << what << ": " << packed.status();
            EXPECT_EQ(packed->shape(), Shape({(out + kPackedPanelColumns - 1) / kPackedPanelColumns, in,
                                              kPackedPanelColumns})) << what;
            Tensor got = Random({rows, out}, 3, dt);  // every element must be written
            for (int64_t i = 0; i < got.numel(); ++i) testing::Set(got, i, std::nan(""));
            FlopCounter counter;
            {
              CountFlopsInto counting(&counter);
              ASSERT_TRUE(PackedLinearForward(x, *packed, got, FlopCategory::kMlp).ok()) << what;
            }
            EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kMlp), 2 * rows * in * out) << what;
            for (int64_t i = 0; i < got.numel(); ++i) ASSERT_FALSE(std::isnan(At(got, i))) << what << " element " << i;
            EXPECT_LE(testing::RelativeError(got, want), tol) << what;
          }
  }
}

TEST(OpsForward, PackedLinearSuitsFewRowsOnTheCpu) {
  EXPECT_TRUE(PackedLinearSuits(Device::kCpu, DType::kF32, kPackedMinRows));
  EXPECT_TRUE(PackedLinearSuits(Device::kCpu, DType::kF64, kPackedMaxRows));
  EXPECT_FALSE(PackedLinearSuits(Device::kCpu, DType::kF32, kPackedMinRows - 1));
  EXPECT_FALSE(PackedLinearSuits(Device::kCpu, DType::kF32, kPackedMaxRows + 1));
  EXPECT_FALSE(PackedLinearSuits(Device::kCpu, DType::kBF16, 16));  // staged through fp32 on every call
  EXPECT_FALSE(PackedLinearSuits(Device::kCuda, DType::kF32, 16));
}

TEST(OpsErrors, PackedLinearNamesMismatchedShapes) {
  Tensor w = New({6, 20}), x = New({4, 6});
  const Tensor packed = PackLinearWeight(w).value();
  Tensor wide = New({4, 20 + kPackedPanelColumns});  // more columns than the panels hold
  absl::Status s = PackedLinearForward(x, packed, wide, FlopCategory::kMlp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("PackedLinearForward"), std::string::npos) << s;
  Tensor other = New({4, 7}), y = New({4, 20});  // 7 inputs against 6
  s = PackedLinearForward(other, packed, y, FlopCategory::kMlp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s;
  EXPECT_FALSE(PackedLinearForward(x, w, y, FlopCategory::kMlp).ok());  // not a packed weight
  EXPECT_FALSE(PackLinearWeight(New({2, 3, 4})).ok());
}

TEST(OpsForward, AdamWMatchesFormula) {
  Tensor p = Random({3}, 1), g = Random({3}, 2), m = New({3}), v = New({3});
  const Tensor p0 = Random({3}, 1);
  AdamWStep s{0.1, 0.9, 0.95, 1e-8, 0.01, 1};
  ASSERT_TRUE(AdamWUpdate(p, g, m, v, s).ok());
  for (int i = 0; i < 3; ++i) {
    // Step 1 with zero state: m_hat = g, v_hat = g^2.
    const double expect = At(p0, i) - 0.1 * (At(g, i) / (std::abs(At(g, i)) + 1e-8) + 0.01 * At(p0, i));
    EXPECT_NEAR(At(p, i), expect, 1e-12);
  }
}

TEST(OpsFlops, GemmAndAttentionCountModelFlops) {
  FlopCounter counter;
  CountFlopsInto counting(&counter);
  Tensor x = Random({6, 4}, 1, DType::kF32), w = Random({4, 5}, 2, DType::kF32), y = New({6, 5}, DType::kF32);
  ASSERT_TRUE(LinearForward(x, w, y, FlopCategory::kMlp).ok());
  EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kMlp), 2 * 6 * 4 * 5);
  const int64_t b = 2, t = 5, h = 3, d = 4;
  Tensor q = Random({b, t, h, d}, 1, DType::kF32), o = New({b, t, h, d}, DType::kF32);
  Tensor lse = New({b, h, t}, DType::kF32);
  ASSERT_TRUE(CausalAttentionForward(q, q, q, 0.5, o, lse).ok());
  EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kAttentionCore), b * h * (t * (t + 1) / 2) * 2 * (d + d));
  {  // a nested scope counts apart, and work outside every scope is not counted
    const NotCounted not_counted;
    ASSERT_TRUE(LinearForward(x, w, y, FlopCategory::kMlp).ok());
  }
  EXPECT_EQ(counter.Get(Pass::kForward, FlopCategory::kMlp), 2 * 6 * 4 * 5);
}

TEST(OpsErrors, ShapeMismatchNamesOpAndShapes) {
  Tensor x = New({3, 4}), w = New({5, 2}), y = New({3, 2});
  const absl::Status s = LinearForward(x, w, y, FlopCategory::kMlp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("LinearForward"), std::string::npos) << s;
  EXPECT_NE(s.message().find("(3, 4)"), std::string::npos) << s;
}

TEST(OpsErrors, TokenOutsideVocabulary) {
  Tensor tokens = Tensor::Zeros({2}, DType::kI32).value();
  tokens.data<int32_t>()[1] = 9;
  Tensor table = New({5, 3}), out = New({2, 3});
  const absl::Status s = EmbeddingForward(tokens, table, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("token id 9"), std::string::npos) << s;
}

// bf16 on the CPU (fp32 staging): Add of two bf16 tensors is the fp32 sum rounded once to nearest
// even, so 1 + 2^-8 (halfway between two bf16 values) rounds to 1, and 1 + 3 * 2^-8 to 1 + 2^-6.
TEST(OpsBf16, CpuKernelsComputeInFp32AndRoundOnce) {
  Tensor a = Tensor::Empty({3}, DType::kF32).value(), b = Tensor::Empty({3}, DType::kF32).value();
  const float av[] = {1.0f, 1.0f, 3.0f}, bv[] = {0x1p-8f, 3 * 0x1p-8f, 0.25f};
  for (int i = 0; i < 3; ++i) a.data<float>()[i] = av[i], b.data<float>()[i] = bv[i];
  // 2^-8 and 3 * 2^-8 are exact in bf16; 1 + 2^-8 is not.
  Tensor a16 = a.To(Device::kCpu, DType::kBF16).value(), b16 = b.To(Device::kCpu, DType::kBF16).value();
  Tensor c16 = Tensor::Empty({3}, DType::kBF16).value();
  ASSERT_TRUE(Add(a16, b16, c16).ok());
  const Tensor c = c16.To(Device::kCpu, DType::kF32).value();
  EXPECT_EQ(c.data<float>()[0], 1.0f);
  EXPECT_EQ(c.data<float>()[1], 1.0f + 0x1p-6f);
  EXPECT_EQ(c.data<float>()[2], 3.25f);
  // NaN stays NaN through the cast both ways.
  a.data<float>()[0] = std::nanf("");
  EXPECT_TRUE(std::isnan(At(a.To(Device::kCpu, DType::kBF16).value().To(Device::kCpu, DType::kF32).value(), 0)));
}

// Mixed precision's dtypes (runtime/dtype.h AccumDType): bf16 products accumulate into an fp32 C,
// exactly the fp32 GEMM of the same values; a bf16 norm's statistics must be fp32.
TEST(OpsBf16, GemmIntoFp32AndNormStatisticsRules) {
  Tensor a = Random({4, 8}, 1, DType::kF32).To(Device::kCpu, DType::kBF16).value();
  Tensor b = Random({8, 3}, 2, DType::kF32).To(Device::kCpu, DType::kBF16).value();
  Tensor c = Tensor::Zeros({4, 3}, DType::kF32).value(), ref = Tensor::Zeros({4, 3}, DType::kF32).value();
  GemmArgs g = GemmArgs::Dense(4, 3, 8);
  ASSERT_TRUE(Gemm(a, b, c, g, FlopCategory::kMlp).ok());
  ASSERT_TRUE(Gemm(a.To(Device::kCpu, DType::kF32).value(), b.To(Device::kCpu, DType::kF32).value(), ref, g,
                   FlopCategory::kMlp).ok());
  for (int64_t i = 0; i < c.numel(); ++i) EXPECT_EQ(At(c, i), At(ref, i)) << i;
  Tensor f64 = Tensor::Zeros({4, 3}, DType::kF64).value();
  const absl::Status wrong_c = Gemm(a, b, f64, g, FlopCategory::kMlp);
  EXPECT_EQ(wrong_c.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_c.message().find("expected bf16 or f32"), std::string::npos) << wrong_c;
  Tensor y = Tensor::Zeros({4, 8}, DType::kBF16).value(), rstd16 = Tensor::Zeros({4}, DType::kBF16).value();
  const absl::Status s = RmsNormForward(a, nullptr, 1e-5, y, rstd16);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("row statistic has dtype bf16, expected f32"), std::string::npos) << s;
  Tensor rstd = Tensor::Zeros({4}, DType::kF32).value();
  EXPECT_TRUE(RmsNormForward(a, nullptr, 1e-5, y, rstd).ok());
}

TEST(OpsErrors, CastRefusesTokenIds) {
  Tensor ids = Tensor::Zeros({2}, DType::kI32).value(), f = New({2}, DType::kF32);
  const absl::Status s = Cast(ids, f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not floating"), std::string::npos) << s;
}

// Both the struct and this check expand LRKV_BACKEND_KERNELS, so a kernel added to the list and
// not filled in ops/cpu/backend.cc fails here.
TEST(OpsBackend, CpuTableHasEveryKernel) {
  const Backend& cpu = BackendOf(Device::kCpu);
  EXPECT_STREQ(cpu.name, "cpu");
#define LRKV_EXPECT_FILLED_(member, function, params) EXPECT_NE(cpu.member, nullptr) << #member;
  LRKV_BACKEND_KERNELS(LRKV_EXPECT_FILLED_)
#undef LRKV_EXPECT_FILLED_
}

// With CUDA the table is complete as well; without it every entry is null and reports Unimplemented.
TEST(OpsBackend, CudaTableIsCompleteExactlyInACudaBuild) {
  const Backend& cuda = BackendOf(Device::kCuda);
  EXPECT_STREQ(cuda.name, "cuda");
#ifdef LRKV_HAVE_CUDA
  constexpr bool kFilled = true;
#else
  constexpr bool kFilled = false;
  Tensor a = New({2}), out = New({2});  // host tensors: the null entry is never called
  const absl::Status s = LRKV_RUN_KERNEL(Device::kCuda, add, a, a, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), "add: no cuda kernel in this build");
#endif
#define LRKV_EXPECT_FILLED_(member, function, params) EXPECT_EQ(cuda.member != nullptr, kFilled) << #member;
  LRKV_BACKEND_KERNELS(LRKV_EXPECT_FILLED_)
#undef LRKV_EXPECT_FILLED_
}

}  // namespace
}  // namespace lrkv

namespace lrkv {
namespace {

void CheckHeadSlice(int64_t hs, int64_t offset) {
  const int64_t n = 3, h = 4, ds = 2, dd = 5;
  testing::GradCase c{{testing::Random({n, hs, ds}, 1)},
                      [=](const std::vector<Tensor>& in) -> absl::StatusOr<Tensor> {
                        Tensor y = Tensor::Zeros({n, h, dd}, DType::kF64).value();
                        LRKV_TRY(CopyToHeadSlice(in[0], offset, y));
                        return y;
                      },
                      [=](const std::vector<Tensor>& in, const Tensor& dy) -> absl::StatusOr<std::vector<Tensor>> {
                        Tensor dx = testing::ZerosLike(in[0]);
                        LRKV_TRY(ReduceFromHeadSlice(dy, offset, dx));
                        return std::vector<Tensor>{dx};
                      }};
  EXPECT_LT(testing::MaxGradientError(c), 1e-6);
}
TEST(OpsGradient, HeadSliceBroadcast) { CheckHeadSlice(1, 3); }
TEST(OpsGradient, HeadSlicePerHead) { CheckHeadSlice(4, 0); }

}  // namespace
}  // namespace lrkv

namespace lrkv {
namespace {

int64_t ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr || std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  if (f != nullptr) std::fclose(f);
  return int64_t(resident) * 4096;
}

// Sizes that never repeat (decoding's growing keys) must not pile up in the host allocator's cache
// of freed blocks: 300 touched blocks of 2-3 MiB, each freed before the next, stay near one block.
TEST(HostAllocator, CacheDoesNotGrowWithSizesThatNeverRepeat) {
  const int64_t before = ResidentBytes();
  for (int64_t i = 0; i < 300; ++i) {
    Tensor t = Tensor::Empty({(1 << 19) + i * 1024}, DType::kF32).value();  // 2 MiB + 4 KiB i
    ASSERT_TRUE(t.SetZero().ok());  // touch every page
  }
  EXPECT_LT(ResidentBytes() - before, int64_t(64) << 20) << "the cache kept the freed blocks";
}

// The emulated device's one rule: host code outside a kernel may not touch its elements. Copies and
// kernels may; a direct read stops the process naming the tensor, as a GPU's memory would fault.
TEST(EmulatedDevice, HostMayNotTouchItsElementsOutsideKernels) {
  Tensor host = testing::Random({4, 3}, 7, DType::kF32);
  Tensor dev = host.To(Device::kEmulated, DType::kF32).value();
  Tensor sum = Tensor::Empty({4, 3}, DType::kF32, Device::kEmulated).value();
  ASSERT_TRUE(Add(dev, dev, sum).ok());  // a kernel: allowed
  const Tensor back = sum.To(Device::kCpu, DType::kF32).value();
  for (int64_t i = 0; i < host.numel(); ++i) EXPECT_EQ(back.data<float>()[i], 2 * host.data<float>()[i]);
  EXPECT_DEATH(static_cast<void>(dev.data<float>()[0]), "host code outside a kernel touched the elements of f32\\(4, 3\\) emulated");
  EXPECT_DEATH(static_cast<void>(dev.raw()), "outside a kernel");
}

}  // namespace
}  // namespace lrkv
