#include "launch/cli/command_args.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lrkv {

absl::StatusOr<NamedArgs> ParseNamedArgs(const std::vector<std::string>& args, const std::vector<std::string>& known,
                                         const std::string& usage) {
  NamedArgs out;
  for (const std::string& arg : args) {
    const size_t eq = arg.find('=');
    const std::string name = arg.rfind("--", 0) == 0 && eq != std::string::npos ? arg.substr(2, eq - 2) : "";
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown argument '", arg, "'\nusage: ", usage));
    }
    out.emplace_back(name, arg.substr(eq + 1));
  }
  return out;
}

}  // namespace lrkv
