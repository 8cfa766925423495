// Optimizer pieces: the learning-rate schedule, global-norm clipping, and which parameters decay.
#include <cmath>

#include "gtest/gtest.h"
#include "model/parameter.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"

namespace lrkv {
namespace {

TEST(LrSchedule, WarmupThenCosineToMinimum) {
  TrainConfig t;
  t.set_lr(1.0), t.set_min_lr(0.1), t.set_warmup_steps(4), t.set_steps(14);
  EXPECT_DOUBLE_EQ(LearningRate(t, 0), 0.25);
  EXPECT_DOUBLE_EQ(LearningRate(t, 3), 1.0);
  EXPECT_DOUBLE_EQ(LearningRate(t, 4), 1.0);                    // start of the decay
  EXPECT_NEAR(LearningRate(t, 9), 0.1 + 0.45 * (1 + std::cos(M_PI * 0.5)), 1e-12);  // halfway
  EXPECT_NEAR(LearningRate(t, 14), 0.1, 1e-12);
}

ParameterSet TwoParams() {
  ParameterSet ps(DType::kF64, Device::kCpu);
  Parameter* w = ps.Add({"w", {2}, InitKind::kOnes, 0, ParamRole::kWeight}).value();
  Parameter* n = ps.Add({"norm.weight", {2}, InitKind::kOnes, 0, ParamRole::kNorm}).value();
  EXPECT_TRUE(ps.Initialize(0).ok());
  w->grad.data<double>()[0] = 3, w->grad.data<double>()[1] = 0;
  n->grad.data<double>()[0] = 0, n->grad.data<double>()[1] = 4;
  return ps;
}

TEST(GradClip, ScalesToMaxNormAndReportsTheNormBefore) {
  ParameterSet ps = TwoParams();
  EXPECT_DOUBLE_EQ(ClipGradNorm(ps, 10.0).value(), 5.0);  // below the limit: unchanged
  EXPECT_DOUBLE_EQ(GlobalGradNorm(ps).value(), 5.0);
  EXPECT_DOUBLE_EQ(ClipGradNorm(ps, 1.0).value(), 5.0);
  EXPECT_NEAR(GlobalGradNorm(ps).value(), 1.0, 1e-12);
  EXPECT_NEAR(ps.Find("w")->grad.data<double>()[0], 0.6, 1e-12);
}

TEST(AdamW, WeightDecaySkipsNormsUnlessAsked) {
  for (bool decay_norms : {false, true}) {
    ParameterSet ps = TwoParams();
    TrainConfig t;
    t.set_beta1(0.9), t.set_beta2(0.95), t.set_adam_eps(1e-8), t.set_weight_decay(0.5), t.set_decay_norms(decay_norms);
    AdamW opt = AdamW::Create(WholeParameters(ps), t).value();
    ASSERT_TRUE(opt.Step(0.1).ok());
    // Element 1 of w and element 0 of the norm have zero gradient: only decay moves them.
    EXPECT_NEAR(ps.Find("w")->value.data<double>()[1], 1.0 - 0.1 * 0.5, 1e-12);
    EXPECT_NEAR(ps.Find("norm.weight")->value.data<double>()[0], decay_norms ? 0.95 : 1.0, 1e-12);
  }
}

}  // namespace
}  // namespace lrkv
