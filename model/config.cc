#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "model/attention/variant_registry.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

// Collects the parser's first error with its position.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (error_.empty()) error_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

absl::StatusOr<RunConfig> ParseRunConfig(const std::string& text, const std::string& source_name) {
  RunConfig config;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(absl::StrCat("config ", source_name, ":", errors.error()));
  }
  return config;
}

absl::StatusOr<RunConfig> LoadRunConfig(const std::string& path) {
  std::error_code ec;
  LRKV_REQUIRE(!std::filesystem::is_directory(path, ec), "config ", path, " is a directory, not a config file");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("config file not found or unreadable: ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseRunConfig(text.str(), path);
}

absl::Status ApplyOverride(RunConfig& config, const std::string& path, const std::string& value) {
  using google::protobuf::FieldDescriptor;
  const std::vector<std::string> parts = absl::StrSplit(path, '.');
  google::protobuf::Message* msg = &config;
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field = msg->GetDescriptor()->FindFieldByName(parts[i]);
    LRKV_REQUIRE(field != nullptr, "unknown config field '", path, "' (no field '", parts[i], "' in ",
                 msg->GetDescriptor()->name(), ")");
    if (i + 1 < parts.size()) {
      LRKV_REQUIRE(field->type() == FieldDescriptor::TYPE_MESSAGE, "config field '", path, "': '", parts[i],
                   "' is not a section");
      msg = msg->GetReflection()->MutableMessage(msg, field);
      continue;
    }
    LRKV_REQUIRE(field->type() != FieldDescriptor::TYPE_MESSAGE, "config field '", path,
                 "' is a section; set one of its fields");
    // Let the text-format parser convert the value, so overrides accept exactly what files accept.
    const std::string quoted = field->type() == FieldDescriptor::TYPE_STRING
                                   ? absl::StrCat("\"", absl::CEscape(value), "\"")
                                   : value;
    google::protobuf::TextFormat::Parser parser;
    ErrorCollector errors;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFieldValueFromString(quoted, field, msg)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config field '", path, "': cannot parse value '", value, "'"));
    }
  }
  return absl::OkStatus();
}

void FillDefaults(RunConfig& config) {
  ModelConfig& m = *config.mutable_model();
  if (m.d_ff() == 0) m.set_d_ff(int32_t(std::clamp<int64_t>(4LL * m.d_model(), INT32_MIN, INT32_MAX)));
  if (m.norm_eps() == 0) m.set_norm_eps(1e-5);
  if (m.rope_theta() == 0) m.set_rope_theta(10000.0);
  if (m.init_std() == 0) m.set_init_std(0.02);
  // The variant's own defaults (an unknown one is refused by validation).
  if (absl::StatusOr<const AttentionVariantInfo*> v = FindAttentionVariant(m.attention()); v.ok() && m.n_heads() > 0) {
    (*v)->fill_defaults(m);
  }
  ParallelConfig& p = *config.mutable_parallel();
  if (p.dp() == 0) p.set_dp(1);
  if (p.tp() == 0) p.set_tp(1);
  if (p.pp() == 0) p.set_pp(1);
  if (p.bucket_bytes() == 0) p.set_bucket_bytes(25 << 20);
  if (p.collective_timeout_s() == 0) p.set_collective_timeout_s(600);
  TrainConfig& t = *config.mutable_train();
  if (t.micro_batch() == 0) t.set_micro_batch(std::max(1, t.global_batch() / p.dp()));
  if (!t.has_beta1()) t.set_beta1(0.9);
  if (!t.has_beta2()) t.set_beta2(0.95);
  if (!t.has_adam_eps()) t.set_adam_eps(1e-8);
  if (t.eval_batches() == 0) t.set_eval_batches(8);
  if (t.log_every() == 0) t.set_log_every(1);
  if (!t.has_keep_checkpoints()) t.set_keep_checkpoints(3);
  if (!t.has_max_skipped_steps()) t.set_max_skipped_steps(10);
  if (t.out_dir().empty()) t.set_out_dir("runs/latest");
  if (t.metrics_out().empty()) t.set_metrics_out(t.out_dir() + "/metrics.jsonl");
}

int32_t AttentionKvHeads(const ModelConfig& m) { return VariantOf(m).kv_heads(m); }

const char* AttentionKindName(AttentionKind kind) {
  const absl::StatusOr<const AttentionVariantInfo*> v = FindAttentionVariant(kind);
  return v.ok() ? (*v)->name.c_str() : "unspecified";
}

bool NumericFieldValue(const google::protobuf::Message& m, const google::protobuf::FieldDescriptor* f, double* value,
                       std::string* text) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m.GetReflection();
  auto set = [&](auto v) {
    *value = double(v), *text = absl::StrCat(v);
    return true;
  };
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return set(r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64: return set(r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32: return set(r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64: return set(r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE: return set(r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT: return set(r->GetFloat(m, f));
    default: return false;
  }
}

absl::Status ValidateFieldRanges(const google::protobuf::Message& message, const std::string& section) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  const google::protobuf::Reflection* r = message.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = absl::StrCat(section, ".", f->name());
    double value = 0;
    std::string text;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (r->HasField(message, f)) LRKV_TRY(ValidateFieldRanges(r->GetMessage(message, f), name));
        continue;
      case FieldDescriptor::CPPTYPE_ENUM: {
        // An enum left at its UNSPECIFIED zero, or a number the enum does not define, is refused.
        const int number = r->GetEnumValue(message, f);
        const google::protobuf::EnumValueDescriptor* v = f->enum_type()->FindValueByNumber(number);
        if (v != nullptr && !absl::EndsWith(v->name(), "_UNSPECIFIED")) continue;
        std::string names;
        for (int k = 0; k < f->enum_type()->value_count(); ++k) {
          const std::string& n = f->enum_type()->value(k)->name();
          if (!absl::EndsWith(n, "_UNSPECIFIED")) absl::StrAppend(&names, names.empty() ? "" : ", ", n);
        }
        return absl::InvalidArgumentError(absl::StrCat(name, v == nullptr ? absl::StrCat(" has no value ", number)
                                                                          : std::string(" must be set"),
                                                       ": one of ", names));
      }
      default:
        if (!NumericFieldValue(message, f, &value, &text)) continue;  // strings and bools have no range
    }
    if (!f->options().HasExtension(range)) {
      return absl::InternalError(absl::StrCat("config field ", name, " has no (range) in model/config.proto"));
    }
    const FieldRange& b = f->options().GetExtension(range);
    const bool above = b.min_exclusive() ? value > b.min() : value >= b.min();
    const bool below = b.max_exclusive() ? value < b.max() : value <= b.max();
    if (!std::isfinite(value) || !above || !below) {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be in ", b.min_exclusive() ? "(" : "[", b.min(), ", ",
                                                     b.max(), b.max_exclusive() ? ")" : "]", ", got ", text));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateModelConfig(const ModelConfig& m) {
  LRKV_TRY(ValidateFieldRanges(m, "model"));
  LRKV_REQUIRE(m.d_model() % m.n_heads() == 0, "model.n_heads (", m.n_heads(), ") does not divide model.d_model (",
               m.d_model(), ")");
  LRKV_TRY_ASSIGN(const AttentionVariantInfo* variant, FindAttentionVariant(m.attention()));
  // A field only another variant reads is a mistake (or a config meant for that variant).
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  for (const AttentionVariantInfo& other : AttentionVariants()) {
    for (const std::string& field : other.own_fields) {
      const bool mine = std::find(variant->own_fields.begin(), variant->own_fields.end(), field) != variant->own_fields.end();
      const google::protobuf::FieldDescriptor* f = d->FindFieldByName(field);
      LRKV_REQUIRE(f != nullptr, "internal: variant ", other.name, " owns unknown field model.", field);
      LRKV_REQUIRE(mine || !m.GetReflection()->HasField(m, f), "model.", field, " is set but model.attention is ",
                   variant->name);
    }
  }
  return variant->validate(m);
}

absl::Status ValidateParallelConfig(const RunConfig& c) {
  const ParallelConfig& p = c.parallel();
  const ModelConfig& m = c.model();
  LRKV_TRY(ValidateFieldRanges(p, "parallel"));
  // Tensor parallelism splits heads, MLP columns and vocabulary rows evenly (KV heads that do not
  // split evenly are replicated instead, see model/attention/grouped_query_attention.h).
  LRKV_REQUIRE(m.n_heads() % p.tp() == 0, "parallel.tp (", p.tp(), ") does not divide model.n_heads (", m.n_heads(),
               "): every tensor-parallel rank needs the same number of attention heads");
  LRKV_REQUIRE(m.d_ff() % p.tp() == 0, "parallel.tp (", p.tp(), ") does not divide model.d_ff (", m.d_ff(), ")");
  LRKV_REQUIRE(m.vocab_size() % p.tp() == 0, "parallel.tp (", p.tp(), ") does not divide model.vocab_size (",
               m.vocab_size(), "): the embedding and LM head are split by vocabulary rows");
  LRKV_REQUIRE(p.pp() <= m.n_layers(), "parallel.pp (", p.pp(), ") is more pipeline stages than model.n_layers (",
               m.n_layers(), "): every stage needs at least one layer");
  const TrainConfig& t = c.train();
  LRKV_REQUIRE(t.global_batch() % (int64_t(p.dp()) * t.micro_batch()) == 0, "train.global_batch (", t.global_batch(),
               ") must be a multiple of parallel.dp (", p.dp(), ") x train.micro_batch (", t.micro_batch(), ")");
  return absl::OkStatus();
}

absl::Status ValidateTrainConfig(const TrainConfig& t) {
  LRKV_TRY(ValidateFieldRanges(t, "train"));
  LRKV_REQUIRE(t.micro_batch() > 0 && t.global_batch() % t.micro_batch() == 0, "train.micro_batch (",
               t.micro_batch(), ") must divide train.global_batch (", t.global_batch(), ")");
  LRKV_REQUIRE(t.min_lr() <= t.lr(), "train.min_lr (", t.min_lr(), ") must not exceed train.lr (", t.lr(), ")");
  LRKV_REQUIRE(!t.data_dir().empty(), "train.data_dir is empty: pass --data_dir or set it in the config");
  LRKV_REQUIRE(!t.checkpoint_dir().empty() || (t.save_every() == 0 && !t.resume()),
               "--save_every and --resume need --checkpoint_dir (train.checkpoint_dir)");
  return absl::OkStatus();
}

absl::StatusOr<std::string> ModelConfigJson(const ModelConfig& model) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
#if GOOGLE_PROTOBUF_VERSION >= 5026000
  options.always_print_fields_with_no_presence = true;
#else
  options.always_print_primitive_fields = true;
#endif
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(model, &json, options);
  if (!status.ok()) return absl::InternalError(absl::StrCat("model config to JSON: ", status.ToString()));
  return json + "\n";
}

}  // namespace lrkv
