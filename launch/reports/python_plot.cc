#include "launch/reports/python_plot.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace lrkv {

absl::StatusOr<bool> RunPlotScript(const std::string& script, const std::vector<std::string>& args, std::string* why) {
  const char* env_python = std::getenv("LRKV_PYTHON");
  const std::string python = env_python != nullptr && env_python[0] != '\0' ? env_python : "/usr/bin/python3";
  if (access(python.c_str(), X_OK) != 0) {
    *why = absl::StrCat(python, " not found");
    return false;
  }
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot locate the lrkv binary: ", ec.message()));
  const std::string script_path = (self.parent_path() / script).string();
  if (access(script_path.c_str(), R_OK) != 0) {
    *why = absl::StrCat(script_path, " not found");
    return false;
  }
  std::vector<std::string> argv_strings = {python, script_path};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ);
  if (err != 0) {
    *why = absl::StrCat("cannot run ", python, ": ", std::strerror(err));
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat("waiting for ", script, ": ", std::strerror(errno)));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  if (WIFEXITED(status) && WEXITSTATUS(status) == kPlotNoMatplotlib) {
    *why = absl::StrCat("matplotlib is not importable by ", python);
    return false;
  }
  return absl::InternalError(absl::StrCat(script_path, " failed (",
                                          WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                                                            : absl::StrCat("signal ", WTERMSIG(status)),
                                          ")"));
}

}  // namespace lrkv
