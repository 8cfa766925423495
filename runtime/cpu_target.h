// The instruction sets this build was compiled for (-march, CMake's LRKV_MARCH) against the CPU it
// runs on. A build for `native` on an AVX-512 login node dies of SIGILL on an AVX2 compute node at
// its first vector instruction, with nothing naming the cause; launchers call this first instead.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace lrkv {

// This CPU as /proc/cpuinfo names it, with its family and model ("AMD EPYC" alone is a Zen 3 as
// well as a Zen 5): what the benchmarks' reports and a run's summary.json name the machine by.
std::string CpuDescription();

// The CPU features (GCC's names: "avx2", "avx512f", ...) the compiler was allowed to use.
std::vector<std::string> BuildCpuFeatures();

// OK when the CPU has every feature of BuildCpuFeatures(); otherwise an error that names the
// missing ones, the build's -march and how to rebuild. `has` answers for a feature (tests); by
// default the CPU itself is asked.
absl::Status CheckCpuRunsThisBuild(const std::function<bool(std::string_view)>& has = nullptr);

}  // namespace lrkv
