// The attention-variant registry (model/attention/variant_registry.h) is the one list: every
// AttentionKind has a registered variant, and every registered variant has what the tests and
// tools iterate over: a demo config (configs/brown-tiny-NAME.textproto, which the end-to-end,
// layout and benchmark runs pick up by name), a PyTorch reference case
// (tests/reference/cases/NAME.textproto) and a function in the PyTorch reference; and a non-zero
// cost in the FLOP model.
#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "model/attention/variant_registry.h"
#include "model/config.h"
#include "model/flop_model.h"

namespace lrkv {
namespace {

std::string Output(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::array<char, 256> buf;
  while (pipe && fgets(buf.data(), buf.size(), pipe.get())) out += buf.data();
  for (char& c : out) c = c == '\n' ? ' ' : c;
  return out;
}

TEST(VariantRegistry, EveryAttentionKindIsRegistered) {
  const google::protobuf::EnumDescriptor* e = AttentionKind_descriptor();
  for (int i = 0; i < e->value_count(); ++i) {
    const AttentionKind kind = AttentionKind(e->value(i)->number());
    if (kind == ATTENTION_UNSPECIFIED) continue;
    EXPECT_TRUE(FindAttentionVariant(kind).ok()) << e->value(i)->name() << " has no variant file";
  }
  EXPECT_FALSE(FindAttentionVariant(ATTENTION_UNSPECIFIED).ok());
  EXPECT_EQ(AttentionVariants().size(), size_t(e->value_count() - 1));
}

TEST(VariantRegistry, EveryVariantHasItsConfigReferenceCaseAndCost) {
  const std::string src = LRKV_SOURCE_DIR;
  const std::string known = Output("/usr/bin/python3 " + src + "/tests/reference/torch_reference.py --variants");
  for (const AttentionVariantInfo& v : AttentionVariants()) {
    SCOPED_TRACE(v.name);
    absl::StatusOr<RunConfig> c = LoadRunConfig(src + "/configs/brown-tiny-" + v.name + ".textproto");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->model().attention(), v.kind);
    FillDefaults(*c);
    EXPECT_TRUE(ValidateModelConfig(c->model()).ok()) << ValidateModelConfig(c->model());
    EXPECT_TRUE(std::filesystem::exists(src + "/tests/reference/cases/" + v.name + ".textproto"));
    EXPECT_NE((" " + known).find(" " + v.name + " "), std::string::npos) << "torch_reference.py knows: " << known;
    const ModelCost cost = AnalyzeModel(c->model());
    EXPECT_GT(cost.params_attention, 0);
    EXPECT_GT(cost.attention_projection_flops, 0);
    EXPECT_GT(cost.kv_cache_values_per_token_per_layer, 0);
    EXPECT_STREQ(AttentionKindName(v.kind), v.name.c_str());
  }
}

TEST(VariantRegistry, AnotherVariantsFieldIsRefused) {
  const std::string src = LRKV_SOURCE_DIR;
  absl::StatusOr<RunConfig> c = LoadRunConfig(src + "/configs/brown-tiny-mla.textproto");
  ASSERT_TRUE(c.ok());
  c->mutable_model()->set_lrkv_rank(4);
  FillDefaults(*c);
  EXPECT_EQ(ValidateModelConfig(c->model()).message(), "model.lrkv_rank is set but model.attention is mla");
}

}  // namespace
}  // namespace lrkv
