// The analytic cost model against the model itself: parameter counts against the parameters the
// decoder allocates, and matmul FLOPs against what the runtime's op counter measures in a real
// forward and backward pass, exactly, per category and pass, for every variant (every PyTorch
// reference case).
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/flop_model.h"
#include "model/model_placement.h"
#include "runtime/flop_counter.h"
#include "tests/testing/model_testing.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

ModelConfig Config(const std::string& fields) {
  RunConfig c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "model { vocab_size: 53 d_model: 24 n_layers: 2 n_heads: 4 seq_len: 7 d_ff: 40 " + fields + " }", &c));
  testing::SetTestModelChoices(*c.mutable_model());
  FillDefaults(c);
  EXPECT_TRUE(ValidateModelConfig(c.model()).ok()) << ValidateModelConfig(c.model());
  return c.model();
}

class MeasuredEqualsAnalytic : public ::testing::TestWithParam<std::string> {};

TEST_P(MeasuredEqualsAnalytic, ParametersAndFlopsPerCategoryAndPass) {
  const absl::StatusOr<RunConfig> c = testing::LoadReferenceCase(GetParam());
  ASSERT_TRUE(c.ok()) << c.status();
  const ModelConfig& m = c->model();
  const ModelCost cost = AnalyzeModel(m);
  auto model = Decoder::Create(m).value();
  ASSERT_TRUE(model->params().Initialize(1).ok());
  EXPECT_EQ(model->params().NumElements(), cost.params_total);
  EXPECT_EQ(model->KvCacheValuesPerTokenPerLayer(), cost.kv_cache_values_per_token_per_layer);

  const int64_t batch = 3;
  const Tensor tokens = testing::Tokens({batch, m.seq_len()}, m.vocab_size(), 1);
  const Tensor targets = testing::Tokens({batch, m.seq_len()}, m.vocab_size(), 2);
  FlopCounter counter;
  const CountFlopsInto counting(&counter);
  ASSERT_TRUE(model->Forward(tokens, targets).ok());
  ASSERT_TRUE(model->Backward(1.0).ok());
  const std::pair<FlopCategory, int64_t> expected[] = {
      {FlopCategory::kAttentionProjection, cost.attention_projection_flops},
      {FlopCategory::kAttentionCore, cost.attention_core_flops},
      {FlopCategory::kMlp, cost.mlp_flops},
      {FlopCategory::kLmHead, cost.lm_head_flops}};
  for (const auto& [category, per_sequence] : expected) {
    EXPECT_EQ(counter.Get(Pass::kForward, category), batch * per_sequence) << FlopCategoryName(category);
    EXPECT_EQ(counter.Get(Pass::kBackward, category), 2 * batch * per_sequence) << FlopCategoryName(category);
  }
  EXPECT_EQ(counter.Total(), 3 * batch * cost.forward_flops());
}

// One per PyTorch reference case (tests/testing/model_testing.h).
INSTANTIATE_TEST_SUITE_P(ReferenceCases, MeasuredEqualsAnalytic, ::testing::ValuesIn(testing::ReferenceCases()),
                         testing::CaseName);

TEST(AnalyzeModel, MhaByHand) {
  // d 24, H 4 (d_h 6), 2 layers, T 7, d_ff 40, V 53, untied, RMSNorm.
  const ModelCost c = AnalyzeModel(Config("attention: MHA"));
  EXPECT_EQ(c.params_attention, 2 * 4 * 24 * 24);
  EXPECT_EQ(c.params_mlp, 2 * 2 * 24 * 40);
  EXPECT_EQ(c.params_total, 2 * 53 * 24 + 2 * 4 * 24 * 24 + 2 * 2 * 24 * 40 + 5 * 24);
  EXPECT_EQ(c.attention_core_flops, 2 * 2 * 4 * (6 + 6) * (7 * 8 / 2));
  EXPECT_EQ(c.attention_core_full_flops, 2 * 2 * 4 * (6 + 6) * 49);
  EXPECT_EQ(c.lm_head_flops, 2 * 24 * 53 * 7);
  EXPECT_EQ(c.kv_cache_values_per_token, 2 * 2 * 4 * 6);
}

TEST(AnalyzeModel, LrkvCacheIsSharedPlusLatents) {
  const ModelCost c = AnalyzeModel(Config("attention: LRKV lrkv_rank: 3"));
  EXPECT_EQ(c.kv_cache_values_per_token_per_layer, 2 * (6 + 4 * 3));
}

}  // namespace
}  // namespace lrkv

namespace lrkv {
namespace {

// Each rank of a TP x PP layout, built on its own (no communication: the FLOPs an op counts do not
// depend on the all-reduces between ops), measures exactly the FLOPs and holds exactly the
// parameters AnalyzeLayout gives its stage.
class LayoutMeasuredEqualsAnalytic : public ::testing::TestWithParam<std::string> {};

TEST_P(LayoutMeasuredEqualsAnalytic, EveryRankOfEveryStage) {
  const absl::StatusOr<RunConfig> rc = testing::LoadReferenceCase(GetParam());
  ASSERT_TRUE(rc.ok()) << rc.status();
  ModelConfig m = rc->model();
  m.set_n_layers(3);      // three stages at pp 3
  m.set_vocab_size(56);   // split by vocabulary at tp 2 and 4
  const int64_t batch = 2, t = m.seq_len(), d = m.d_model();
  for (const auto& [tp, pp] : {std::pair{1, 1}, {2, 1}, {4, 2}, {2, 3}}) {
    const std::vector<RankCost> stages = AnalyzeLayout(m, tp, pp);
    int64_t job_flops = 0, replicated = 0;
    for (int s = 0; s < pp; ++s) {
      for (int i = 0; i < tp; ++i) {
        ModelPlacement place;
        place.tp_rank = {i, tp};
        place.first_layer = stages[s].first_layer, place.end_layer = stages[s].end_layer;
        place.first_stage = s == 0, place.last_stage = s == pp - 1;
        auto model = Decoder::Create(m, place).value();
        ASSERT_TRUE(model->params().Initialize(1).ok());
        EXPECT_EQ(model->params().NumElements(), stages[s].params) << "tp" << tp << " pp" << pp << " stage " << s;
        const Tensor tokens = testing::Tokens({batch, t}, m.vocab_size(), 1);
        const Tensor input = testing::Random({batch, t, d}, 2, DType::kF32);
        FlopCounter counter;
        const CountFlopsInto counting(&counter);
        DecoderActivations a;
        Tensor output, dinput;
        ASSERT_TRUE(model->ForwardStage(tokens, input, tokens, a, output).ok());
        const Tensor doutput = testing::Random({batch, t, d}, 3, DType::kF32);
        ASSERT_TRUE(model->BackwardStage(a, doutput, 1.0, dinput).ok());
        EXPECT_EQ(counter.Total(), 3 * batch * stages[s].forward_flops)
            << "tp" << tp << " pp" << pp << " stage " << s;
        job_flops += stages[s].forward_flops;
        replicated += stages[s].replicated_forward_flops;
      }
    }
    EXPECT_EQ(job_flops, AnalyzeModel(m).forward_flops() + (tp - 1) * replicated / tp) << "tp" << tp << " pp" << pp;
  }
}

INSTANTIATE_TEST_SUITE_P(ReferenceCases, LayoutMeasuredEqualsAnalytic, ::testing::ValuesIn(testing::ReferenceCases()),
                         testing::CaseName);

}  // namespace
}  // namespace lrkv

namespace lrkv {
namespace {

// MLRA's claim (arXiv 2603.02188, Table 1) at its 2.9B setting (d_h 128, latent 4 x 128, RoPE key
// 64): 4.5 d_h cached per token, like MLA, but 1.5 d_h per rank at tp 4, where MLA's latent stays
// whole on every rank.
TEST(AnalyzeLayout, MlraCacheSplitsByBlockMlaDoesNot) {
  const ModelConfig mlra = Config("attention: MLRA mlra { blocks: 4 kv_lora_rank: 512 rope_dim: 64 }");
  const ModelConfig mla = Config("attention: MLA mla { kv_lora_rank: 512 rope_dim: 64 }");
  EXPECT_EQ(AnalyzeModel(mlra).kv_cache_values_per_token_per_layer, 576);
  EXPECT_EQ(AnalyzeLayout(mlra, 2, 1)[0].kv_cache_values_per_token_per_layer, 256 + 64);
  EXPECT_EQ(AnalyzeLayout(mlra, 4, 1)[0].kv_cache_values_per_token_per_layer, 128 + 64);  // 1.5 d_h
  EXPECT_EQ(AnalyzeLayout(mla, 4, 1)[0].kv_cache_values_per_token_per_layer, 576);
}

// Under QK-norm MLA and MLRA also cache each key's 1 / rms: MLA one per head (its rank's heads),
// MLRA one per (block, head reading it), split with the blocks when decoding partitions by block,
// else by head.
TEST(AnalyzeLayout, QkNormAddsTheKeyScalesToMlaAndMlraCaches) {  // 4 heads
  const ModelConfig mla = Config("qk_norm: true attention: MLA mla { kv_lora_rank: 512 rope_dim: 64 }");
  const ModelConfig mlra4 = Config("qk_norm: true attention: MLRA mlra { blocks: 4 kv_lora_rank: 512 rope_dim: 64 }");
  const ModelConfig mlra2 = Config(
      "qk_norm: true attention: MLRA mlra { blocks: 4 kv_lora_rank: 512 rope_dim: 64 heads_per_block_group: 2 }");
  const ModelConfig two = Config("qk_norm: true attention: MLRA mlra { blocks: 2 kv_lora_rank: 512 rope_dim: 64 }");
  EXPECT_EQ(AnalyzeModel(mla).kv_cache_values_per_token_per_layer, 576 + 4);
  EXPECT_EQ(AnalyzeLayout(mla, 4, 1)[0].kv_cache_values_per_token_per_layer, 576 + 1);
  EXPECT_EQ(AnalyzeModel(mlra4).kv_cache_values_per_token_per_layer, 576 + 4 * 4);
  EXPECT_EQ(AnalyzeLayout(mlra4, 4, 1)[0].kv_cache_values_per_token_per_layer, 128 + 64 + 4);
  EXPECT_EQ(AnalyzeModel(mlra2).kv_cache_values_per_token_per_layer, 576 + 4 * 2);
  EXPECT_EQ(AnalyzeLayout(mlra2, 2, 1)[0].kv_cache_values_per_token_per_layer, 256 + 64 + 2 * 2);
  EXPECT_EQ(AnalyzeLayout(two, 4, 1)[0].kv_cache_values_per_token_per_layer, 512 + 64 + 2 * 1);  // by head
}

}  // namespace
}  // namespace lrkv
