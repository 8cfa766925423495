// What every benchmark binary shares: timing a GEMM, writing its JSON report, and main() (flags
// parsed, the run, its error printed under the program's name, exit status 1).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "runtime/cpu_target.h"
#include "runtime/ops/cpu/simd_vec.h"

namespace lrkv::bench {

// The highest GFLOP/s of `repeats` timed calls of `call`, each doing `flops`, after one untimed call
// (first touch, JIT, BLAS threads starting).
template <typename Call>
double BestGflops(double flops, int repeats, Call call) {
  call();
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    best = std::max(best, flops / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
  }
  return best;
}

// The CPU as /proc/cpuinfo names it, with its family and model ("AMD EPYC" alone is a Zen 3 as well
// as a Zen 5), and the vector width this build's kernels use: timings from different machines are
// not comparable, and a report must say which it came from.
struct CpuInfo {
  std::string model;
  int simd_bytes = cpu::kSimdBytes;
};
inline CpuInfo ThisCpu() {
  std::map<std::string, std::string> fields;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line) && !line.empty();) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    fields.emplace(std::string(absl::StripAsciiWhitespace(line.substr(0, colon))),
                   std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  CpuInfo info;
  info.model = fields.count("model name") ? fields["model name"] : "unknown";
  if (fields.count("cpu family")) info.model += absl::StrCat(" (family ", fields["cpu family"], ", model ", fields["model"], ")");
  return info;
}

// `text` to `path`, its directory created; an error names the file.
inline absl::Status WriteReport(const std::filesystem::path& path, const std::string& text) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream f(path);
  f << text << "\n";
  f.close();
  if (!f) return absl::UnavailableError(absl::StrCat("cannot write ", path.string()));
  std::fprintf(stderr, "report -> %s\n", path.c_str());
  return absl::OkStatus();
}

inline int Main(int argc, char** argv, const char* name, absl::Status (*run)()) {
  absl::Status status = CheckCpuRunsThisBuild();
  if (status.ok()) {
    absl::ParseCommandLine(argc, argv);
    status = run();
  }
  if (status.ok()) return 0;
  std::fprintf(stderr, "%s: %s\n", name, status.ToString().c_str());
  return 1;
}

}  // namespace lrkv::bench
