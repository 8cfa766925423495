// The config's validation table (the (range) option of every numeric field in model/config.proto):
// every field has a range, and a sweep of 0, -1, NaN, +-inf and a huge value through every field,
// as a command-line override, is accepted exactly when the value lands in the field's range, and
// refused naming the field otherwise. Zero where zero is meaningful stays zero (field presence);
// enums left unspecified are refused.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "model/attention/variant_registry.h"
#include "model/config.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// Dotted paths of every numeric field of RunConfig ("model.mla.rope_dim").
void NumericFields(const Descriptor* d, const std::string& prefix, std::vector<const FieldDescriptor*>& fields,
                   std::vector<std::string>& paths) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE: NumericFields(f->message_type(), path, fields, paths); break;
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE: fields.push_back(f), paths.push_back(path); break;
      default: break;
    }
  }
}

RunConfig Base(const std::string& name) {
  absl::StatusOr<RunConfig> c = LoadRunConfig(std::string(LRKV_SOURCE_DIR) + "/configs/" + name);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// The section's validation, as `lrkv train` runs it after the overrides and FillDefaults.
absl::Status Validate(RunConfig c) {
  FillDefaults(c);
  LRKV_TRY(ValidateModelConfig(c.model()));
  LRKV_TRY(ValidateTrainConfig(c.train()));
  return ValidateParallelConfig(c);
}

// The field's effective value after FillDefaults, as a double.
double Effective(RunConfig c, const std::string& path) {
  FillDefaults(c);
  const google::protobuf::Message* m = &c;
  size_t start = 0;
  for (size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1) {
    const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(path.substr(start, dot - start));
    m = &m->GetReflection()->GetMessage(*m, f);
  }
  double v = 0;
  std::string text;
  EXPECT_TRUE(NumericFieldValue(*m, m->GetDescriptor()->FindFieldByName(path.substr(start)), &v, &text)) << path;
  return v;
}

bool InRange(double v, const FieldRange& b) {
  return std::isfinite(v) && (b.min_exclusive() ? v > b.min() : v >= b.min()) &&
         (b.max_exclusive() ? v < b.max() : v <= b.max());
}

TEST(ConfigRanges, EveryNumericFieldHasARange) {
  std::vector<const FieldDescriptor*> fields;
  std::vector<std::string> paths;
  NumericFields(RunConfig::descriptor(), "", fields, paths);
  ASSERT_GT(fields.size(), 30u);
  for (size_t i = 0; i < fields.size(); ++i) {
    ASSERT_TRUE(fields[i]->options().HasExtension(range)) << paths[i] << " has no (range) in model/config.proto";
    const FieldRange& b = fields[i]->options().GetExtension(range);
    EXPECT_LT(b.min(), b.max()) << paths[i];
  }
}

TEST(ConfigRanges, SweepOfEveryFieldIsAcceptedExactlyInRange) {
  std::vector<const FieldDescriptor*> fields;
  std::vector<std::string> paths;
  NumericFields(RunConfig::descriptor(), "", fields, paths);
  int refused = 0, accepted = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string& path = paths[i];
    // MLA's fields are read only by an MLA model.
    const RunConfig base = Base(path.rfind("model.mla.", 0) == 0 ? "brown-tiny-mla.textproto" : "brown-tiny-lrkv.textproto");
    const bool is_int = fields[i]->cpp_type() != FieldDescriptor::CPPTYPE_DOUBLE &&
                        fields[i]->cpp_type() != FieldDescriptor::CPPTYPE_FLOAT;
    std::vector<std::string> probes = {"0", "-1", "nan", "inf", "-inf", "1e30"};
    if (is_int) probes = {"0", "-1", "nan", "inf", "1e30", "2147483647", "9223372036854775807"};
    const FieldRange& b = fields[i]->options().GetExtension(range);
    for (const std::string& probe : probes) {
      RunConfig c = base;
      const absl::Status parsed = ApplyOverride(c, path, probe);
      const std::string what = path + "=" + probe;
      if (!parsed.ok()) {  // not representable in the field's type: refused, naming the field
        EXPECT_NE(parsed.message().find(path), std::string::npos) << what << ": " << parsed;
        ++refused;
        continue;
      }
      const double v = Effective(c, path);
      const absl::Status status = Validate(c);
      if (!InRange(v, b)) {
        EXPECT_FALSE(status.ok()) << what << " (effective " << v << ") was accepted";
        EXPECT_NE(status.message().find(path), std::string::npos) << what << ": " << status;
        ++refused;
      } else {
        // In range: the range check passes (a cross-field rule may still refuse, naming its fields).
        FillDefaults(c);
        const std::string section = path.substr(0, path.find('.'));
        const google::protobuf::Message& m = section == "model"   ? static_cast<const google::protobuf::Message&>(c.model())
                                             : section == "train" ? static_cast<const google::protobuf::Message&>(c.train())
                                                                  : c.parallel();
        EXPECT_TRUE(ValidateFieldRanges(m, section).ok()) << what << ": " << ValidateFieldRanges(m, section);
        ++accepted;
      }
    }
  }
  EXPECT_GT(refused, 100);
  EXPECT_GT(accepted, 20);
}

TEST(ConfigRanges, MessagesNameFieldRangeAndValue) {
  RunConfig c = Base("brown-tiny-lrkv.textproto");
  ASSERT_TRUE(ApplyOverride(c, "model.init_std", "-1").ok());
  EXPECT_EQ(Validate(c).message(), "model.init_std must be in (0, 1], got -1");
  c = Base("brown-tiny-lrkv.textproto");
  ASSERT_TRUE(ApplyOverride(c, "train.eval_batches", "-1").ok());
  EXPECT_EQ(Validate(c).message(), "train.eval_batches must be in [1, 1e+06], got -1");
  c = Base("brown-tiny-lrkv.textproto");
  ASSERT_TRUE(ApplyOverride(c, "model.rope_theta", "inf").ok());
  EXPECT_EQ(Validate(c).message(), "model.rope_theta must be in (0, 1e+12], got inf");
}

TEST(ConfigPresence, ZeroIsKeptWhereItIsMeaningful) {
  RunConfig c = Base("brown-tiny-lrkv.textproto");
  for (const char* f : {"train.beta1", "train.beta2", "train.adam_eps", "train.keep_checkpoints", "train.max_skipped_steps"}) {
    ASSERT_TRUE(ApplyOverride(c, f, "0").ok()) << f;
  }
  FillDefaults(c);
  EXPECT_EQ(c.train().beta1(), 0.0);
  EXPECT_EQ(c.train().beta2(), 0.0);
  EXPECT_EQ(c.train().adam_eps(), 0.0);
  EXPECT_EQ(c.train().keep_checkpoints(), 0);
  EXPECT_EQ(c.train().max_skipped_steps(), 0);
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  RunConfig d = Base("brown-tiny-lrkv.textproto");
  FillDefaults(d);  // unset: the documented defaults
  EXPECT_EQ(d.train().beta1(), 0.9);
  EXPECT_EQ(d.train().beta2(), 0.95);
  EXPECT_EQ(d.train().adam_eps(), 1e-8);
  EXPECT_EQ(d.train().keep_checkpoints(), 3);
  EXPECT_EQ(d.train().max_skipped_steps(), 10);
}

TEST(ConfigEnums, UnspecifiedIsRefusedNamingTheChoices) {
  RunConfig c = Base("brown-tiny-lrkv.textproto");
  c.mutable_model()->clear_activation();
  EXPECT_EQ(Validate(c).message(), "model.activation must be set: one of GELU, RELU_SQUARED, SWIGLU");
  c = Base("brown-tiny-lrkv.textproto");
  c.mutable_model()->clear_norm();
  EXPECT_EQ(Validate(c).message(), "model.norm must be set: one of RMSNORM, LAYERNORM");
  c = Base("brown-tiny-lrkv.textproto");
  c.mutable_model()->clear_attention();
  std::string kinds;  // every registered variant, in AttentionKind order
  for (const AttentionVariantInfo& v : AttentionVariants()) {
    kinds += (kinds.empty() ? "" : ", ") + AttentionKind_Name(v.kind);
  }
  EXPECT_EQ(Validate(c).message(), "model.attention must be set: one of " + kinds);
  c = Base("brown-tiny-lrkv.textproto");
  ASSERT_TRUE(ApplyOverride(c, "model.activation", "0").ok());
  EXPECT_FALSE(Validate(c).ok());
}

TEST(ConfigFile, DirectoryIsNamedAsSuch) {
  const absl::StatusOr<RunConfig> c = LoadRunConfig(std::string(LRKV_SOURCE_DIR) + "/configs");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("is a directory, not a config file"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace lrkv
