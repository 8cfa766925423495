// Arguments of the commands that read their own (`--baseline` may repeat, which Abseil flags do not
// allow): every argument is --NAME=VALUE with NAME from the command's list.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv {

using NamedArgs = std::vector<std::pair<std::string, std::string>>;

// ("--tokens=1e12") -> ("tokens", "1e12"), in order. An argument of another form or an unknown NAME
// fails with a message that ends with `usage`.
absl::StatusOr<NamedArgs> ParseNamedArgs(const std::vector<std::string>& args, const std::vector<std::string>& known,
                                         const std::string& usage);

}  // namespace lrkv
