// The unit tests' tiny configs name only the fields a test is about; a real config must also state
// its activation and norm (unspecified enums are refused), which this fills in for them.
//
// The PyTorch reference cases (tests/reference/cases/NAME.textproto; every registered variant has
// at least one) are the list of model configs every per-variant test runs over, so a new variant's
// case reaches all of them. A test target using them defines LRKV_SOURCE_DIR.
#pragma once

#include <algorithm>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "model/config.pb.h"

namespace lrkv::testing {

inline void SetTestModelChoices(ModelConfig& m) {
  if (m.activation() == ACTIVATION_UNSPECIFIED) m.set_activation(GELU);
  if (m.norm() == NORM_UNSPECIFIED) m.set_norm(RMSNORM);
}

#ifdef LRKV_SOURCE_DIR
inline std::string ReferenceCasePath(const std::string& name) {
  return std::string(LRKV_SOURCE_DIR) + "/tests/reference/cases/" + name + ".textproto";
}

inline std::vector<std::string> ReferenceCases() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(std::string(LRKV_SOURCE_DIR) + "/tests/reference/cases")) {
    if (e.path().extension() == ".textproto") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A parametrized test's name: the case's.
inline std::string CaseName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

// The case's RunConfig with its defaults filled in.
inline absl::StatusOr<RunConfig> LoadReferenceCase(const std::string& name) {
  absl::StatusOr<RunConfig> c = LoadRunConfig(ReferenceCasePath(name));
  if (c.ok()) FillDefaults(*c);
  return c;
}

// The decoding tests run every case as written and with its QK-norm flipped: what MLA and MLRA
// cache depends on it (their keys' scales).
struct DecodingCase {
  std::string name;
  bool flip_qk_norm = false;
};

inline std::vector<DecodingCase> DecodingCases() {
  std::vector<DecodingCase> cases;
  for (const std::string& name : ReferenceCases())
    for (const bool flip : {false, true}) cases.push_back({name, flip});
  return cases;
}

inline std::string DecodingCaseName(const ::testing::TestParamInfo<DecodingCase>& info) {
  return info.param.name + (info.param.flip_qk_norm ? "_qk_norm_flipped" : "");
}
// gtest prints a parameter in the test's listing (and CTest names the test after it): the name,
// not the struct's bytes, which hold pointers and padding that change from run to run.
inline void PrintTo(const DecodingCase& c, std::ostream* os) {
  *os << c.name << (c.flip_qk_norm ? " with QK-norm flipped" : "");
}

inline absl::StatusOr<RunConfig> LoadDecodingCase(const DecodingCase& d) {
  absl::StatusOr<RunConfig> c = LoadReferenceCase(d.name);
  if (c.ok() && d.flip_qk_norm) c->mutable_model()->set_qk_norm(!c->model().qk_norm());
  return c;
}
#endif

}  // namespace lrkv::testing
