#include "launch/cli/command_args.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/status.h"

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

absl::Status ParseLayout(const std::string& text, ParallelConfig& p) {
  const std::vector<std::string> parts = absl::StrSplit(text, ',', absl::SkipEmpty());
  LRKV_REQUIRE(!parts.empty(), "--layout is empty: give tpN, ppN and/or dpN, e.g. --layout=tp2,pp2");
  for (const std::string& part : parts) {
    const size_t digits = part.find_first_of("0123456789");
    int value = 0;
    const std::string dim = part.substr(0, digits);
    LRKV_REQUIRE(digits != std::string::npos && absl::SimpleAtoi(part.substr(digits), &value) && value >= 1 &&
                     (dim == "tp" || dim == "pp" || dim == "dp"),
                 "--layout=", text, ": '", part, "' is not tpN, ppN or dpN");
    if (dim == "tp") p.set_tp(value);
    if (dim == "pp") p.set_pp(value);
    if (dim == "dp") p.set_dp(value);
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ParseByteSize(const std::string& text) {
  const std::string lower = absl::AsciiStrToLower(text);
  const size_t unit_at = lower.find_first_not_of("0123456789.e+");
  const std::string number = lower.substr(0, unit_at), unit = unit_at == std::string::npos ? "" : lower.substr(unit_at);
  const std::pair<const char*, double> units[] = {{"", 1},          {"b", 1},          {"kb", 1e3},
                                                  {"mb", 1e6},      {"gb", 1e9},       {"tb", 1e12},
                                                  {"kib", 1 << 10}, {"mib", 1 << 20},  {"gib", 1 << 30},
                                                  {"tib", 1099511627776.0}};
  double value = 0;
  LRKV_REQUIRE(absl::SimpleAtod(number, &value) && value > 0, "'", text, "' is not a size such as 80GiB, 80GB or 1e9");
  for (const auto& [name, scale] : units) {
    if (unit == name) return value * scale;
  }
  return absl::InvalidArgumentError(absl::StrCat("'", text, "': unknown unit '", unit,
                                                 "' (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"));
}

}  // namespace lrkv
