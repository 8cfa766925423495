#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "launch/cli/commands.h"

namespace lrkv {

absl::Status ExecPrepareData(char** argv) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot locate the lrkv binary: ", ec.message()));
  const std::string tool = (self.parent_path() / "lrkv-prepare-data").string();
  argv[1] = argv[0];  // lrkv-prepare-data gets the flags after the command word
  execv(tool.c_str(), argv + 1);
  return absl::NotFoundError(absl::StrCat("cannot run ", tool, ": ", std::strerror(errno)));
}

}  // namespace lrkv
