// Loading, overriding, defaulting and validating run configs (model/config.proto).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "model/config.pb.h"
#include "runtime/dtype.h"

namespace lrkv {

// Parses a text-format RunConfig. Errors name the file, line and column.
absl::StatusOr<RunConfig> LoadRunConfig(const std::string& path);
absl::StatusOr<RunConfig> ParseRunConfig(const std::string& text, const std::string& source_name);

// Sets one field by dotted path, e.g. ("model.lrkv_rank", "8") or ("train.data_dir", "/tmp/d").
// Unknown paths and unparsable values fail with a message naming the path.
absl::Status ApplyOverride(RunConfig& config, const std::string& path, const std::string& value);

// Writes the documented defaults into fields left at 0 (d_ff, norm_eps, rope_theta, MLA widths,
// optimizer constants, ...), so that every consumer reads the effective value from the message.
void FillDefaults(RunConfig& config);

// Every numeric field of `message` (a section of RunConfig named `section`, sub-messages included)
// within its (range) from config.proto and finite; every enum set to a defined value other than its
// UNSPECIFIED zero. Called by the three Validate functions below, after FillDefaults.
absl::Status ValidateFieldRanges(const google::protobuf::Message& message, const std::string& section);
// A numeric field's value as a double and as written ("-5"); false for strings, bools, enums, messages.
bool NumericFieldValue(const google::protobuf::Message& message, const google::protobuf::FieldDescriptor* field,
                       double* value, std::string* text);

// Checks that the model can be built; the message names the offending field(s).
absl::Status ValidateModelConfig(const ModelConfig& model);
absl::Status ValidateTrainConfig(const TrainConfig& train);
// The layout against the model and batch (the world size is checked by parallel/mesh.h).
absl::Status ValidateParallelConfig(const RunConfig& config);

// The dtype a run of `precision` computes in (its masters and gradients: AccumDType of it).
inline DType ComputeDType(Precision precision) { return precision == BF16 ? DType::kBF16 : DType::kF32; }
inline Device TrainingDevice(TrainDevice d) {
  return d == CUDA ? Device::kCuda : d == EMULATED ? Device::kEmulated : Device::kCpu;
}

// Derived sizes used across the model.
inline int32_t HeadDim(const ModelConfig& m) { return m.d_model() / m.n_heads(); }
// KV heads the attention core sees: H for MHA, MLA and LRKV (materialised per head), kv_heads for GQA, 1 for MQA.
int32_t AttentionKvHeads(const ModelConfig& m);
const char* AttentionKindName(AttentionKind kind);  // "lrkv"

// The ModelConfig as JSON with the .textproto files' field names and every field spelled out
// (qk_norm: false, kv_heads: 0): `lrkv export`'s NAME.config.json, the reference cases' fields.
absl::StatusOr<std::string> ModelConfigJson(const ModelConfig& model);

}  // namespace lrkv
