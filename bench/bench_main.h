// What every benchmark binary shares: timing a GEMM, writing its JSON report, and main() (flags
// parsed, the run, its error printed under the program's name, exit status 1).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/flags/parse.h"
#include "absl/status/status.h"
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
