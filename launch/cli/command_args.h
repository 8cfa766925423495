// Arguments of the commands that read their own (`--baseline` may repeat, which Abseil flags do not
// allow): every argument is --NAME=VALUE with NAME from the command's list.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.pb.h"

namespace lrkv {

using NamedArgs = std::vector<std::pair<std::string, std::string>>;

// ("--tokens=1e12") -> ("tokens", "1e12"), in order. An argument of another form or an unknown NAME
// fails with a message that ends with `usage`.
absl::StatusOr<NamedArgs> ParseNamedArgs(const std::vector<std::string>& args, const std::vector<std::string>& known,
                                         const std::string& usage);

// "tp2,pp4,dp8" (any subset, any order) into `p`'s tp, pp and dp (`lrkv flops --layout`, `lrkv memory`).
absl::Status ParseLayout(const std::string& text, ParallelConfig& p);

// A size in bytes: "80GiB", "80GB", "512MiB", "1e9" (B, KB/MB/GB/TB powers of 1000, KiB/MiB/GiB/TiB
// of 1024, case-insensitive).
absl::StatusOr<double> ParseByteSize(const std::string& text);

}  // namespace lrkv
