#include "launch/formats/model_weights.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/config.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

std::string Describe(const std::string& dtype, const Shape& shape) {
  return absl::StrCat(dtype, " [", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

absl::Status ReadModelParameters(const SafetensorsReader& file, ParameterSet& params, const std::string& model,
                                 bool part_of_model) {
  const std::string dtype = SafetensorsDTypeName(params.master_dtype());
  std::vector<std::string> problems;
  for (const auto& p : params.all()) {
    const SafetensorsTensorInfo* t = file.Find(p->spec.name);
    if (t == nullptr) {
      problems.push_back(absl::StrCat("missing tensor '", p->spec.name, "' (", Describe(dtype, p->spec.shape), ")"));
    } else if (t->shape != p->spec.shape || t->dtype != dtype) {
      problems.push_back(absl::StrCat("tensor '", p->spec.name, "' is ", Describe(t->dtype, t->shape),
                                      "; the model's is ", Describe(dtype, p->spec.shape)));
    }
  }
  for (const SafetensorsTensorInfo& t : file.tensors()) {
    if (!part_of_model && params.Find(t.name) == nullptr) {
      problems.push_back(absl::StrCat("unexpected tensor '", t.name, "' (", Describe(t.dtype, t.shape),
                                      "): the model has no such parameter"));
    }
  }
  if (!problems.empty()) {
    constexpr size_t kShown = 20;
    const size_t more = problems.size() > kShown ? problems.size() - kShown : 0;
    problems.resize(problems.size() - more);
    if (more > 0) problems.push_back(absl::StrCat("... and ", more, " more"));
    return absl::InvalidArgumentError(absl::StrCat(file.path(), " does not match ", model, ":\n  ",
                                                   absl::StrJoin(problems, "\n  ")));
  }
  for (const auto& p : params.all()) {
    if (p->block.dim < 0) {
      LRKV_TRY_ASSIGN(Tensor host, Tensor::Empty(p->spec.shape, params.master_dtype()));
      LRKV_TRY(file.ReadInto(p->spec.name, host));
      LRKV_TRY(p->master.CopyFrom(host));
      continue;
    }
    // A tensor-parallel block: the whole tensor, then this rank's elements of it.
    LRKV_TRY_ASSIGN(Tensor whole, Tensor::Empty(p->spec.shape, params.master_dtype()));
    LRKV_TRY(file.ReadInto(p->spec.name, whole));
    LRKV_TRY_ASSIGN(Tensor block, Tensor::Empty(p->block.shape, params.master_dtype()));
    const int64_t size = DTypeSize(params.master_dtype());
    const char* from = static_cast<const char*>(whole.raw());
    char* to = static_cast<char*>(block.raw());
    for (int64_t i = 0; i < block.numel(); ++i) {
      std::memcpy(to + i * size, from + GlobalIndex(p->spec.shape, p->block, i) * size, size);
    }
    LRKV_TRY(p->master.CopyFrom(block));
  }
  return params.RefreshValues();
}

absl::StatusOr<RunConfig> RunConfigFromMetadata(const SafetensorsReader& file) {
  const auto it = file.metadata().find(kWeightsRunConfigKey);
  if (it == file.metadata().end()) {
    return absl::NotFoundError(absl::StrCat(file.path(), " has no \"", kWeightsRunConfigKey,
                                            "\" metadata (not written by lrkv export): pass the config"));
  }
  return ParseRunConfig(it->second, absl::StrCat(file.path(), " metadata ", kWeightsRunConfigKey));
}

}  // namespace lrkv
