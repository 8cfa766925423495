#include "runtime/cpu_target.h"

#include <fstream>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/test_hooks.h"

#ifndef LRKV_MARCH
#define LRKV_MARCH "the compiler's default"
#endif

namespace lrkv {
namespace {

using Probe = bool (*)();

// (name, whether this CPU has it) for each feature the build's target enabled. The names go to
// __builtin_cpu_supports as literals, so each is written out; the list covers what GCC emits for
// this code's float, bf16 and integer work.
std::vector<std::pair<const char*, Probe>> BuildFeatureProbes() {
  std::vector<std::pair<const char*, Probe>> f;
#ifdef __SSE2__
  f.push_back({"sse2", [] { return __builtin_cpu_supports("sse2") != 0; }});
#endif
#ifdef __SSE4_2__
  f.push_back({"sse4.2", [] { return __builtin_cpu_supports("sse4.2") != 0; }});
#endif
#ifdef __AVX__
  f.push_back({"avx", [] { return __builtin_cpu_supports("avx") != 0; }});
#endif
#ifdef __FMA__
  f.push_back({"fma", [] { return __builtin_cpu_supports("fma") != 0; }});
#endif
#ifdef __AVX2__
  f.push_back({"avx2", [] { return __builtin_cpu_supports("avx2") != 0; }});
#endif
#ifdef __BMI2__
  f.push_back({"bmi2", [] { return __builtin_cpu_supports("bmi2") != 0; }});
#endif
#ifdef __AVX512F__
  f.push_back({"avx512f", [] { return __builtin_cpu_supports("avx512f") != 0; }});
#endif
#ifdef __AVX512DQ__
  f.push_back({"avx512dq", [] { return __builtin_cpu_supports("avx512dq") != 0; }});
#endif
#ifdef __AVX512BW__
  f.push_back({"avx512bw", [] { return __builtin_cpu_supports("avx512bw") != 0; }});
#endif
#ifdef __AVX512VL__
  f.push_back({"avx512vl", [] { return __builtin_cpu_supports("avx512vl") != 0; }});
#endif
#ifdef __AVX512BF16__
  f.push_back({"avx512bf16", [] { return __builtin_cpu_supports("avx512bf16") != 0; }});
#endif
  return f;
}

}  // namespace

std::string CpuDescription() {
  std::map<std::string, std::string> fields;  // of the first processor
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line) && !line.empty();) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    fields.emplace(std::string(absl::StripAsciiWhitespace(line.substr(0, colon))),
                   std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  std::string cpu = fields.count("model name") ? fields["model name"] : "this CPU";
  if (fields.count("cpu family")) absl::StrAppend(&cpu, " (family ", fields["cpu family"], ", model ", fields["model"], ")");
  return cpu;
}

std::vector<std::string> BuildCpuFeatures() {
  std::vector<std::string> names;
  for (const auto& [name, probe] : BuildFeatureProbes()) names.push_back(name);
  return names;
}

absl::Status CheckCpuRunsThisBuild(const std::function<bool(std::string_view)>& has) {
  const char* hook = TestHook("LRKV_TEST_CPU_LACKS");
  const std::string lacks = hook != nullptr ? hook : "";
  std::vector<std::string> missing;
  for (const auto& [name, probe] : BuildFeatureProbes()) {
    const bool hidden = lacks == "all" || lacks == name;
    if (!(has ? has(name) : !hidden && probe())) missing.push_back(name);
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "this build of lrkv was compiled for -march=", LRKV_MARCH, " (", absl::StrJoin(BuildCpuFeatures(), " "),
      "), but ", CpuDescription(), " lacks ", absl::StrJoin(missing, ", "),
      ": rebuild on this machine, or for every machine of the job with cmake -DLRKV_MARCH=TARGET (e.g. x86-64-v3 "
      "for AVX2, x86-64-v4 for AVX-512)"));
}

}  // namespace lrkv
