// Model-level tests: config validation, whole-model gradients against finite differences in float64,
// the variant identities (LRKV r = 0 is MQA, GQA with kv_heads = H is MHA), LRKV's init scale,
// initialisation keyed by name (and, under tensor parallelism, by global element index), and each
// variant's KV-cache size.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "model/attention/lrkv_attention.h"
#include "model/block.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/flop_model.h"
#include "model/sampling.h"
#include "tests/testing/model_testing.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

// A tiny model (d = 8, H = 2 unless `model_fields` sets them otherwise).
RunConfig Tiny(const std::string& model_fields) {
  RunConfig c = ParseRunConfig("model { vocab_size: 11 d_model: 8 n_layers: 2 n_heads: 2 seq_len: 4 d_ff: 12 }", "base")
                    .value();
  EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString("model { " + model_fields + " }", &c)) << model_fields;
  testing::SetTestModelChoices(*c.mutable_model());
  FillDefaults(c);
  return c;
}

absl::Status Invalid(const std::string& model_fields) {
  RunConfig c = Tiny(model_fields);
  return ValidateModelConfig(c.model());
}

void ExpectErrorMentions(const absl::Status& s, const std::string& text) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(text), std::string::npos) << s;
}

TEST(Config, InvalidConfigsNameTheField) {
  ExpectErrorMentions(Invalid("attention: MHA n_heads: 3"), "model.n_heads (3) does not divide model.d_model (8)");
  ExpectErrorMentions(Invalid("attention: LRKV lrkv_rank: 5"), "model.lrkv_rank (5)");
  ExpectErrorMentions(Invalid("attention: GQA n_heads: 4 kv_heads: 3"), "model.kv_heads (3) does not divide");
  ExpectErrorMentions(Invalid("attention: MLA"), "model.mla.kv_lora_rank");
  ExpectErrorMentions(Invalid("attention: MLA mla { kv_lora_rank: 4 }"), "model.mla.rope_dim");
  ExpectErrorMentions(Invalid(""), "model.attention");
  EXPECT_TRUE(Invalid("attention: LRKV lrkv_rank: 4").ok());
}

TEST(Config, MalformedTextGivesLineAndColumn) {
  const auto c = ParseRunConfig("model {\n  d_model: 8\n  n_heads: x\n}", "bad.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("bad.textproto:3:"), std::string::npos) << c.status();
}

TEST(Config, MissingFileIsNotFound) {
  const auto c = LoadRunConfig("/nonexistent/config.textproto");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("/nonexistent/config.textproto"), std::string::npos);
}

TEST(Config, OverridesSetNestedFieldsAndRejectUnknownOnes) {
  RunConfig c = Tiny("attention: MLA");
  ASSERT_TRUE(ApplyOverride(c, "model.mla.kv_lora_rank", "6").ok());
  ASSERT_TRUE(ApplyOverride(c, "train.data_dir", "/tmp/x y").ok());
  ASSERT_TRUE(ApplyOverride(c, "model.attention", "LRKV").ok());
  EXPECT_EQ(c.model().mla().kv_lora_rank(), 6);
  EXPECT_EQ(c.train().data_dir(), "/tmp/x y");
  EXPECT_EQ(c.model().attention(), LRKV);
  ExpectErrorMentions(ApplyOverride(c, "model.no_such_field", "1"), "model.no_such_field");
  ExpectErrorMentions(ApplyOverride(c, "model.d_model", "wide"), "cannot parse value 'wide'");
}

std::unique_ptr<Decoder> Build(const RunConfig& c, DType dtype, uint64_t seed = 3) {
  EXPECT_TRUE(ValidateModelConfig(c.model()).ok()) << ValidateModelConfig(c.model());
  auto m = Decoder::Create(c.model(), {}, dtype).value();
  EXPECT_TRUE(m->params().Initialize(seed).ok());
  return m;
}

// Backward of the whole model against central differences of the loss, float64, on a sample of
// elements of every parameter.
void CheckModelGradients(const RunConfig& c) {
  auto model = Build(c, DType::kF64);
  const Tensor tokens = testing::Tokens({2, 4}, 11, 1), targets = testing::Tokens({2, 4}, 11, 2);
  ASSERT_TRUE(model->Forward(tokens, targets).ok());
  ASSERT_TRUE(model->Backward(1.0).ok());
  std::mt19937 rng(5);
  for (const auto& p : model->params().all()) {
    const int64_t n = p->value.numel();
    for (int sample = 0; sample < std::min<int64_t>(n, 6); ++sample) {
      const int64_t i = rng() % n;
      double* v = p->value.data<double>() + i;
      const double saved = *v, h = 1e-6;
      *v = saved + h;
      const double up = model->Forward(tokens, targets).value();
      *v = saved - h;
      const double down = model->Forward(tokens, targets).value();
      *v = saved;
      const double numeric = (up - down) / (2 * h), analytic = p->grad.data<double>()[i];
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << p->spec.name << "[" << i << "]";
    }
  }
}

// One per PyTorch reference case (tests/testing/model_testing.h).
class ModelGradient : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelGradient, MatchesFiniteDifferences) {
  absl::StatusOr<RunConfig> c = testing::LoadReferenceCase(GetParam());
  ASSERT_TRUE(c.ok()) << c.status();
  CheckModelGradients(*c);
}

INSTANTIATE_TEST_SUITE_P(ReferenceCases, ModelGradient, ::testing::ValuesIn(testing::ReferenceCases()),
                         testing::CaseName);

// Copies every parameter of `from` whose name exists in `to`, with `rename` applied first.
void CopyParams(Decoder& from, Decoder& to, const std::map<std::string, std::string>& rename = {}) {
  for (const auto& p : from.params().all()) {
    std::string name = p->spec.name;
    for (const auto& [suffix, replacement] : rename) {
      const bool match = name.size() >= suffix.size() &&
                         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
      if (match) name = name.substr(0, name.size() - suffix.size()) + replacement;
    }
    Parameter* q = to.params().Find(name);
    if (q != nullptr) {
      ASSERT_TRUE(q->value.CopyFrom(p->value).ok()) << name;
    }
  }
}

void ExpectSameLogits(Decoder& a, Decoder& b) {
  const Tensor tokens = testing::Tokens({2, 4}, 11, 1), targets = testing::Tokens({2, 4}, 11, 2);
  const double la = a.Forward(tokens, targets).value(), lb = b.Forward(tokens, targets).value();
  EXPECT_NEAR(la, lb, 1e-12);
  EXPECT_LT(testing::RelativeError(a.logits(), b.logits()), 1e-12);
}

TEST(VariantIdentity, LrkvWithRankZeroIsMqa) {
  auto lrkv = Build(Tiny("attention: LRKV lrkv_rank: 0 qk_norm: true"), DType::kF64);
  auto mqa = Build(Tiny("attention: MQA qk_norm: true"), DType::kF64, 99);
  CopyParams(*lrkv, *mqa, {{"wk_shared", "wk"}, {"wv_shared", "wv"}});
  ExpectSameLogits(*lrkv, *mqa);
}

TEST(VariantIdentity, GqaWithAllKvHeadsIsMha) {
  auto gqa = Build(Tiny("attention: GQA kv_heads: 2"), DType::kF64);
  auto mha = Build(Tiny("attention: MHA"), DType::kF64, 99);
  CopyParams(*gqa, *mha);
  ExpectSameLogits(*gqa, *mha);
}

double FrobeniusNorm(const double* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return std::sqrt(s);
}

TEST(LrkvInit, ResidualIsAboutATenthOfTheSharedProjection) {
  // At a realistic width the Frobenius-norm ratio concentrates near 0.1 (paper, section 3).
  RunConfig c = Tiny("attention: LRKV lrkv_rank: 16");
  c.mutable_model()->set_d_model(256);
  c.mutable_model()->set_n_heads(4);
  auto model = Build(c, DType::kF64);
  const int64_t d = 256, dh = 64, r = 16;
  const Parameter* w = model->params().Find("layers.0.attn.wk_shared");
  const Parameter* u = model->params().Find("layers.0.attn.uk");
  const Parameter* b = model->params().Find("layers.0.attn.bk");
  for (int64_t h = 0; h < 4; ++h) {
    std::vector<double> residual(d * dh, 0.0);  // U_h B_h^T: (d, d_h)
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < dh; ++j)
        for (int64_t l = 0; l < r; ++l)
          residual[i * dh + j] += u->value.data<double>()[i * 4 * r + h * r + l] * b->value.data<double>()[(h * dh + j) * r + l];
    const double ratio = FrobeniusNorm(residual.data(), d * dh) / FrobeniusNorm(w->value.data<double>(), d * dh);
    EXPECT_NEAR(ratio, 0.1, 0.02) << "head " << h;
  }
}

TEST(Init, KeyedBySeedNameAndIndex) {
  auto a = Build(Tiny("attention: MHA"), DType::kF32, 42);
  auto b = Build(Tiny("attention: GQA kv_heads: 1"), DType::kF32, 42);  // other parameters around it
  auto c = Build(Tiny("attention: MHA"), DType::kF32, 43);
  const Parameter* pa = a->params().Find("layers.1.mlp.w_in");
  const Parameter* pb = b->params().Find("layers.1.mlp.w_in");
  const Parameter* pc = c->params().Find("layers.1.mlp.w_in");
  EXPECT_EQ(testing::RelativeError(pa->value, pb->value), 0.0);
  EXPECT_GT(testing::RelativeError(pa->value, pc->value), 0.1);
  // Values are N(0, 1/sqrt(fan_in)): the sample std over 96 elements is near 1/sqrt(8).
  double ss = 0;
  for (int64_t i = 0; i < pa->value.numel(); ++i) ss += std::pow(testing::At(pa->value, i), 2);
  EXPECT_NEAR(std::sqrt(ss / pa->value.numel()), 1 / std::sqrt(8.0), 0.05);
}

TEST(KvCache, ValuesPerTokenPerLayer) {
  // d = 8, H = 2, d_h = 4.
  EXPECT_EQ(Build(Tiny("attention: MHA"), DType::kF32)->KvCacheValuesPerTokenPerLayer(), 2 * 2 * 4);
  EXPECT_EQ(Build(Tiny("attention: MQA"), DType::kF32)->KvCacheValuesPerTokenPerLayer(), 2 * 4);
  EXPECT_EQ(Build(Tiny("n_heads: 4 attention: GQA kv_heads: 2"), DType::kF32)->KvCacheValuesPerTokenPerLayer(), 2 * 2 * 2);
  EXPECT_EQ(Build(Tiny("attention: MLA mla { kv_lora_rank: 3 rope_dim: 2 }"), DType::kF32)->KvCacheValuesPerTokenPerLayer(),
            3 + 2);
  EXPECT_EQ(Build(Tiny("attention: LRKV lrkv_rank: 3"), DType::kF32)->KvCacheValuesPerTokenPerLayer(), 2 * (4 + 2 * 3));
}

}  // namespace
}  // namespace lrkv

namespace lrkv {
namespace {

// Under tensor parallelism every rank's block of every parameter holds exactly the values of the
// same elements of the single-process parameter (init by global index), split parameters tile the
// whole tensor, and replicated ones are whole on every rank.
class TensorParallelInit : public ::testing::TestWithParam<std::string> {};

TEST_P(TensorParallelInit, BlocksAreSlicesOfTheWholeModel) {
  const RunConfig c = Tiny("n_heads: 4 " + GetParam());
  ASSERT_TRUE(ValidateModelConfig(c.model()).ok());
  ParameterSet whole(DType::kF64, Device::kCpu);
  ASSERT_TRUE(Block::Create(c.model(), 0, whole, nullptr).ok());
  ASSERT_TRUE(whole.Initialize(5).ok());
  for (const int tp : {2, 4}) {
    std::map<std::string, int64_t> covered, copies;  // elements held over the ranks; expected copies
    for (int index = 0; index < tp; ++index) {
      ParameterSet part(DType::kF64, Device::kCpu, {index, tp});
      ASSERT_TRUE(Block::Create(c.model(), 0, part, nullptr).ok());
      ASSERT_TRUE(part.Initialize(5).ok());
      for (const auto& p : part.all()) {
        const Parameter* w = whole.Find(p->spec.name);
        ASSERT_NE(w, nullptr) << p->spec.name;
        if (p->block.dim < 0) {
          EXPECT_EQ(p->value.shape(), w->value.shape()) << p->spec.name;
        }
        for (int64_t i = 0; i < p->value.numel(); ++i) {
          ASSERT_EQ(p->value.data<double>()[i], w->value.data<double>()[GlobalIndex(w->spec.shape, p->block, i)])
              << p->spec.name << " tp " << index << "/" << tp << " element " << i;
        }
        covered[p->spec.name] += p->value.numel();
        copies[p->spec.name] = p->spec.tp == TpSplit::kSplit ? 1 : tp;
      }
    }
    for (const auto& p : whole.all()) EXPECT_EQ(covered[p->spec.name], p->value.numel() * copies[p->spec.name]);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, TensorParallelInit,
                         ::testing::Values("attention: MHA", "attention: GQA kv_heads: 2", "attention: MQA",
                                           "attention: LRKV lrkv_rank: 2", "activation: SWIGLU attention: MHA",
                                           "attention: MLA mla { kv_lora_rank: 4 q_lora_rank: 3 rope_dim: 2 }"));

TEST(TensorParallelInit, SplitDimensionMustDivide) {
  ParameterSet part(DType::kF32, Device::kCpu, {0, 3});
  const auto p = part.Add(ColumnParallelWeight("w", 4, 8, 1.0));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("not divisible by the tensor-parallel size 3"), std::string::npos) << p.status();
}

}  // namespace
}  // namespace lrkv

namespace lrkv {
namespace {

// Decoding with the KV cache against the full forward pass, per reference case (as written and with
// its QK-norm flipped): three sequences of different lengths, prefilled with prompts of different
// lengths, then extended one token at a time in batches; every position's logits equal the full
// forward's, and the cache holds exactly the variant's KV values per token (model/flop_model.h) at
// every layer.
class Decoding : public ::testing::TestWithParam<testing::DecodingCase> {};

TEST_P(Decoding, PrefillThenTokensEqualsTheFullForward) {
  const absl::StatusOr<RunConfig> c = testing::LoadDecodingCase(GetParam());
  ASSERT_TRUE(c.ok()) << c.status();
  const ModelConfig& m = c->model();
  auto model = Build(*c, DType::kF64, 5);
  const int64_t lengths[] = {5, 3, 6}, prompts[] = {2, 3, 1}, max_len = 6;
  std::vector<Tensor> tokens, reference;  // per sequence: (1, L), logits (L, V)
  for (int s = 0; s < 3; ++s) {
    tokens.push_back(testing::Tokens({1, lengths[s]}, m.vocab_size(), 20 + s));
    ASSERT_TRUE(model->Forward(tokens[s], tokens[s]).ok());
    reference.push_back(model->logits().To(Device::kCpu, DType::kF64).value());
  }
  absl::StatusOr<KvCache> cache = model->NewCache(3, max_len);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->ValuesPerToken(), m.n_layers() * AnalyzeModel(m).kv_cache_values_per_token_per_layer);
  EXPECT_EQ(cache->Bytes(), cache->ValuesPerToken() * 3 * max_len * 8);
  const int64_t v = m.vocab_size();
  auto expect_rows = [&](int s, int64_t first, const Tensor& logits, int64_t row) {
    const int64_t n = logits.dim(1);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < v; ++j) {
        const double want = testing::At(reference[s], (first + t) * v + j);
        EXPECT_NEAR(testing::At(logits, (row * n + t) * v + j), want, 1e-10 * std::max(1.0, std::abs(want)))
            << "sequence " << s << " position " << first + t << " logit " << j;
      }
  };
  for (int s = 0; s < 3; ++s) {  // prefill, one sequence at a time
    Tensor prompt = testing::Tokens({1, prompts[s]}, 2, 0);
    std::copy_n(tokens[s].data<int32_t>(), prompts[s], prompt.data<int32_t>());
    absl::StatusOr<Tensor> logits = model->Extend(*cache, {s}, prompt);
    ASSERT_TRUE(logits.ok()) << logits.status();
    expect_rows(s, 0, *logits, 0);
  }
  for (int64_t pos = 1; pos < max_len; ++pos) {  // then one token per step, for those that have one
    std::vector<int64_t> seqs;
    for (int s = 0; s < 3; ++s)
      if (cache->lengths[s] == pos && pos < lengths[s]) seqs.push_back(s);
    if (seqs.empty()) continue;
    Tensor next = testing::Tokens({int64_t(seqs.size()), 1}, 2, 0);
    for (size_t i = 0; i < seqs.size(); ++i) next.data<int32_t>()[i] = tokens[seqs[i]].data<int32_t>()[pos];
    absl::StatusOr<Tensor> logits = model->Extend(*cache, seqs, next);
    ASSERT_TRUE(logits.ok()) << logits.status();
    for (size_t i = 0; i < seqs.size(); ++i) expect_rows(int(seqs[i]), pos, *logits, i);
  }
  for (int s = 0; s < 3; ++s) EXPECT_EQ(cache->lengths[s], lengths[s]);
  const Tensor one = testing::Tokens({1, 1}, 2, 0);
  EXPECT_FALSE(model->Extend(*cache, {2}, one).ok());  // full
}

// A model built for decoding, packing its weights, packs the linear weights and the LM head on their
// first few-row product (model/parameter.h Parameter::packed): four sequences, prefilled two tokens each (8 rows), then
// extended a token at a time (4 rows), give the logits of the same model built for training, which
// never packs; the packed copies are dropped when the values change and not made when packing is
// off.
TEST_P(Decoding, PackedWeightsGiveTheSameLogits) {
  const absl::StatusOr<RunConfig> c = testing::LoadDecodingCase(GetParam());
  ASSERT_TRUE(c.ok()) << c.status();
  const ModelConfig& m = c->model();
  auto plain = Build(*c, DType::kF64, 5);
  ModelPlacement place;
  place.tp_rank.decoding = true;
  auto decoding = Decoder::Create(m, place, DType::kF64).value();
  decoding->params().set_pack_weights(true);
  ASSERT_TRUE(decoding->params().Initialize(5).ok());
  auto packed_count = [](Decoder& d) {
    int n = 0;
    for (const auto& p : d.params().all()) n += p->packed.defined();
    return n;
  };
  const int64_t count = 4, len = 4;
  KvCache a = plain->NewCache(count, len).value(), b = decoding->NewCache(count, len).value();
  const std::vector<int64_t> seqs = {0, 1, 2, 3};
  for (int64_t pos = 0; pos < len;) {
    const int64_t n = pos == 0 ? 2 : 1;
    const Tensor next = testing::Tokens({count, n}, m.vocab_size(), 40 + pos);
    absl::StatusOr<Tensor> want = plain->Extend(a, seqs, next), got = decoding->Extend(b, seqs, next);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_LE(testing::RelativeError(*got, *want), 1e-12) << "position " << pos;
    pos += n;
  }
  EXPECT_EQ(packed_count(*plain), 0);
  const char* head = m.tie_embeddings() ? "embed.weight" : "lm_head.weight";
  ASSERT_NE(decoding->params().Find(head), nullptr);
  EXPECT_TRUE(decoding->params().Find(head)->packed.defined()) << head;
  EXPECT_TRUE(decoding->params().Find("layers.0.mlp.w_out")->packed.defined());
  ASSERT_TRUE(decoding->params().RefreshValues().ok());
  EXPECT_EQ(packed_count(*decoding), 0) << "packed copies of old values kept";
  decoding->params().set_pack_weights(false);
  KvCache again = decoding->NewCache(count, len).value();
  ASSERT_TRUE(decoding->Extend(again, seqs, testing::Tokens({count, 2}, m.vocab_size(), 40)).ok());
  EXPECT_EQ(packed_count(*decoding), 0) << "packed with packing off";
}

INSTANTIATE_TEST_SUITE_P(ReferenceCases, Decoding, ::testing::ValuesIn(testing::DecodingCases()),
                         testing::DecodingCaseName);

}  // namespace
}  // namespace lrkv

namespace lrkv {
namespace {

TEST(Sampling, GreedyTopKAndNucleus) {
  const std::vector<double> logits = {0.0, std::log(3.0), -50.0};  // p = (0.25, 0.75, ~0) at temperature 1
  EXPECT_EQ(SampleToken(logits, {0.0, 0, 1.0}, 0.99), 1);           // greedy ignores the draw
  EXPECT_EQ(SampleToken({2.0, 2.0}, {0.0, 0, 1.0}, 0.5), 0);        // ties: the lowest index
  EXPECT_EQ(SampleToken(logits, {1.0, 0, 1.0}, 0.70), 1);           // candidates by probability: 1, 0, 2
  EXPECT_EQ(SampleToken(logits, {1.0, 0, 1.0}, 0.80), 0);
  EXPECT_EQ(SampleToken(logits, {1.0, 1, 1.0}, 0.99), 1);           // top_k 1 is greedy
  EXPECT_EQ(SampleToken(logits, {1.0, 0, 0.5}, 0.99), 1);           // the nucleus of 0.5 is token 1 alone
  // Temperature 2: p ~ (1, sqrt 3) / (1 + sqrt 3) = (0.366, 0.634): 0.65 now falls to token 0.
  EXPECT_EQ(SampleToken(logits, {2.0, 0, 1.0}, 0.65), 0);
  EXPECT_FALSE(ValidateSampling({-1.0, 0, 1.0}).ok());
  EXPECT_FALSE(ValidateSampling({1.0, -1, 1.0}).ok());
  EXPECT_FALSE(ValidateSampling({1.0, 0, 0.0}).ok());
  EXPECT_FALSE(ValidateSampling({1.0, 0, 1.5}).ok());
}

}  // namespace
}  // namespace lrkv
