// Runs a plotting script shipped next to the `lrkv` binary (copied there by launch/CMakeLists.txt)
// with the system Python, which has matplotlib on a machine set up by launch/install-deps.sh.
// Plots are an extra: a machine without Python or matplotlib still gets the command's CSV/JSON.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv {

// Exit status a plotting script uses when it cannot import matplotlib.
inline constexpr int kPlotNoMatplotlib = 3;

// Runs `$LRKV_PYTHON (default /usr/bin/python3) DIR_OF_LRKV/script args...` and waits. Returns true
// when it succeeded, false with `*why` set when Python, the script or matplotlib is missing, and an
// error when the script failed otherwise.
absl::StatusOr<bool> RunPlotScript(const std::string& script, const std::vector<std::string>& args, std::string* why);

}  // namespace lrkv
