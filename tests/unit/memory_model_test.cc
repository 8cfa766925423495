// The memory model against the allocator: for every variant (every PyTorch reference case) and
// every recompute mode, in FP32 and BF16, the bytes the model's parameters and gradients take, what one micro-batch's
// forward keeps, and the most its backward allocates on top of that, as the CPU allocator counts
// them, equal model/memory_model.h's prediction (to the allocator's 64-byte rounding), and in BF16
// the CPU's staging buffer too.
#include <cmath>
#include <ostream>
#include <string>

#include "gtest/gtest.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/memory_model.h"
#include "parallel/data_parallel.h"
#include "runtime/allocator.h"
#include "runtime/ops/cpu/kernels.h"
#include "tests/testing/model_testing.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

struct Case {
  std::string name;
  Recompute mode;
  Precision precision;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (const std::string& name : testing::ReferenceCases()) {
    for (Recompute mode : {NONE, ATTENTION, BLOCK}) {
      for (Precision precision : {FP32, BF16}) cases.push_back({name, mode, precision});
    }
  }
  return cases;
}

std::string CaseName(const Case& c) {
  return c.name + "_" + Recompute_Name(c.mode) + "_" + Precision_Name(c.precision);
}
void PrintTo(const Case& c, std::ostream* os) { *os << CaseName(c); }  // not the struct's bytes

class MemoryModel : public ::testing::TestWithParam<Case> {};

// Within `tolerance` (relative) of the prediction.
void ExpectNear(double measured, double predicted, const char* what, double tolerance = 0.01) {
  EXPECT_NEAR(measured, predicted, tolerance * predicted) << what << ": measured " << measured << ", predicted "
                                                          << predicted;
}

// The prediction for `device` against that device's allocator: the host's for the CPU; for the
// emulated device (a GPU's rules on host memory) its own allocator, against the GPU's prediction,
// so that what a GPU rank holds (and not the host's token ids and scalars) is what is counted.
void CheckAgainstAllocator(const Case& test, Device device) {
  absl::StatusOr<RunConfig> c = testing::LoadReferenceCase(test.name);
  ASSERT_TRUE(c.ok()) << c.status();
  // Long enough sequences that the allocator's rounding of each tensor to 64 bytes is noise.
  const int64_t batch = 4, seq = 128;
  c->mutable_model()->set_seq_len(seq);
  c->mutable_train()->set_global_batch(batch);
  c->mutable_train()->set_micro_batch(batch);
  c->mutable_train()->set_recompute(test.mode);
  c->mutable_train()->set_precision(test.precision);
  const ModelConfig& m = c->model();
  const bool gpu = device != Device::kCpu;
  const RankMemory predicted = PredictRankMemory(*c, gpu ? Device::kCuda : Device::kCpu).at(0);

  Allocator* memory = AllocatorFor(device).value();
  cpu::ReleaseBf16StagingArena();  // an earlier case's: this one's is measured
  const int64_t empty = memory->Stats().in_use;
  auto model = Decoder::Create(m, {}, ComputeDType(test.precision), device).value();
  ASSERT_TRUE(model->params().Initialize(1).ok());
  model->set_recompute(test.mode);
  // Exact but for the allocator's rounding of each value, master and gradient tensor to 64 bytes.
  const double state = memory->Stats().in_use - empty, want = predicted.parameters + predicted.master_weights + predicted.gradients;
  EXPECT_GE(state, want);
  EXPECT_LE(state, want + 3 * 64 * model->params().all().size()) << "parameters and gradients: predicted " << want;

  const int64_t before = memory->Stats().in_use;
  DecoderActivations a;
  {
    const Tensor tokens = testing::Tokens({batch, seq}, m.vocab_size(), 1);
    const Tensor targets = testing::Tokens({batch, seq}, m.vocab_size(), 2);
    Tensor output;
    ASSERT_TRUE(model->ForwardStage(tokens, Tensor(), targets, a, output).ok());
  }
  // In bf16 the CPU kernels' staging buffer (held from the first op on, on the device the kernels
  // run on; a GPU has none) is counted apart.
  const int64_t saved = memory->Stats().in_use - before - cpu::Bf16StagingArenaBytes();
  ExpectNear(saved, predicted.activations_per_micro_batch, "activations");
  memory->ResetPeaks();
  Tensor dinput;
  ASSERT_TRUE(model->BackwardStage(a, Tensor(), 1.0, dinput).ok());
  const int64_t staging = cpu::Bf16StagingArenaBytes();
  ExpectNear(memory->Stats().peak_in_use - before - saved - staging, predicted.working, "backward working set");
  if (gpu) {
    EXPECT_EQ(predicted.staging, 0);
  } else if (test.precision == BF16) {
    ExpectNear(staging, predicted.staging, "bf16 staging buffer");
  } else {
    EXPECT_EQ(staging, 0);
    EXPECT_EQ(predicted.staging, 0);
  }
}

TEST_P(MemoryModel, StateActivationsAndBackwardEqualTheAllocatorsCount) { CheckAgainstAllocator(GetParam(), Device::kCpu); }
TEST_P(MemoryModel, OnADeviceTheGpuPredictionEqualsItsAllocatorsCount) {
  CheckAgainstAllocator(GetParam(), Device::kEmulated);
}

// ZeRO-1 under BF16 over 2 DP ranks: rank 0 keeps fp32 masters for its shard only, half the
// model's, and the prediction counts that (the values and gradients stay whole).
void CheckZero1Masters(Device device) {
  absl::StatusOr<RunConfig> c = testing::LoadReferenceCase(testing::ReferenceCases().front());
  ASSERT_TRUE(c.ok()) << c.status();
  c->mutable_train()->set_precision(BF16);
  c->mutable_train()->set_global_batch(2 * c->train().micro_batch());
  c->mutable_parallel()->set_dp(2);
  c->mutable_parallel()->set_zero1(true);
  const RankMemory predicted = PredictRankMemory(*c, device != Device::kCpu ? Device::kCuda : Device::kCpu).at(0);

  Allocator* memory = AllocatorFor(device).value();
  const int64_t empty = memory->Stats().in_use;
  auto model = Decoder::Create(c->model(), {}, DType::kBF16, device).value();
  ParameterSet& params = model->params();
  std::vector<Tensor*> grads;
  for (const auto& p : params.all()) grads.push_back(&p->grad);
  const Zero1Partition zero1 = Zero1Partition::Create(grads, 2, 0).value();
  std::vector<ParameterSet::MasterRange> held(params.all().size(), {0, 0});
  for (const auto& piece : zero1.pieces()) held[piece.index] = {piece.begin, piece.end};
  ASSERT_TRUE(params.ShardMasters(held).ok());
  ASSERT_TRUE(params.Initialize(1).ok());
  int64_t masters = 0;
  for (const auto& p : params.all()) masters += p->master_end - p->master_begin;
  EXPECT_EQ(masters, zero1.shard_elements());
  EXPECT_EQ(2 * zero1.shard_elements(), params.NumElements() + params.NumElements() % 2);
  ExpectNear(4.0 * masters, predicted.master_weights, "master weights");
  const double state = memory->Stats().in_use - empty, want = predicted.parameters + predicted.master_weights + predicted.gradients;
  EXPECT_GE(state, want - 4);  // the prediction's half of an odd count
  EXPECT_LE(state, want + 3 * 64 * params.all().size()) << "parameters, master shard and gradients: predicted " << want;
}

TEST(MemoryModelZero1, Bf16MastersAreTheRanksShard) { CheckZero1Masters(Device::kCpu); }
TEST(MemoryModelZero1, OnADeviceBf16MastersAreTheRanksShard) { CheckZero1Masters(Device::kEmulated); }

INSTANTIATE_TEST_SUITE_P(ReferenceCases, MemoryModel, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return CaseName(info.param); });

}  // namespace
}  // namespace lrkv
