// A model's parameters in a safetensors file (launch/formats/safetensors.h), as `lrkv export` writes them
// and `lrkv import` and tests/reference/dump_case read them: every parameter under its name
// ("layers.0.attn.wq", "embed.weight", ...) in its global shape, in the math convention of
// model/decoder.h (linear weights (in, out), y = x @ W; embed.weight and lm_head.weight (V, d);
// LRKV bk/bv (H, d_h, r)), plus the run's config and step in the metadata.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "launch/formats/safetensors.h"
#include "model/config.pb.h"
#include "model/parameter.h"

namespace lrkv {

// Metadata keys of an exported file (all values are strings, as the format requires).
inline constexpr char kWeightsFormatKey[] = "format";             // "lrkv"
inline constexpr char kWeightsRunConfigKey[] = "lrkv.run_config";  // the RunConfig, text format
inline constexpr char kWeightsStepKey[] = "lrkv.step";             // training steps completed
inline constexpr char kWeightsSourceKey[] = "lrkv.checkpoint";     // the checkpoint it came from

// Checks that `file` holds exactly the parameters of `params`: each name present with the model's
// dtype and global shape, nothing missing, nothing extra; every mismatch is listed (naming the
// tensor) before anything is read. Then reads the values (of a tensor-parallel block, its part).
// `model` describes the model for the messages, e.g. "the model of configs/x.textproto". With
// `part_of_model` the file may hold tensors `params` lacks (a rank of a decoding partition holds
// only some of MLRA's latent blocks).
absl::Status ReadModelParameters(const SafetensorsReader& file, ParameterSet& params, const std::string& model,
                                 bool part_of_model = false);

// The RunConfig in an exported file's metadata; NotFound when there is none.
absl::StatusOr<RunConfig> RunConfigFromMetadata(const SafetensorsReader& file);

}  // namespace lrkv
