// The lrkv command line: `lrkv COMMAND [flags]`. Config fields can be overridden on any command
// that takes --config with --model.FIELD=VALUE and --train.FIELD=VALUE.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "launch/commands.h"

namespace {

constexpr char kUsage[] =
    "usage: lrkv COMMAND [flags]\n"
    "commands:\n"
    "  prepare-data  fetch a corpus, train the tokenizer, write token shards\n"
    "                  --corpus=brown --out=DIR [--vocab_size=8192]\n"
    "  train         train a model\n"
    "                  --config=FILE [--steps=N --seed=S --data_dir=D --out_dir=O]\n"
    "                  [--model.FIELD=VALUE ...] [--train.FIELD=VALUE ...]\n"
    "run `lrkv COMMAND --helpfull` for every flag.";

bool IsConfigOverride(const char* arg) {
  return std::strncmp(arg, "--model.", 8) == 0 || std::strncmp(arg, "--train.", 8) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "%s\n", kUsage);
    return argc < 2 ? 2 : (std::strcmp(argv[1], "--help") == 0 ? 0 : 2);
  }
  const std::string command = argv[1];
  if (command == "prepare-data") {
    const absl::Status s = lrkv::ExecPrepareData(argv);
    std::fprintf(stderr, "lrkv prepare-data: error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // --model.X=V / --train.X=V are config fields, not Abseil flags: take them out before parsing.
  lrkv::ConfigOverrides overrides;
  std::vector<char*> rest = {argv[0]};
  for (int i = 2; i < argc; ++i) {
    if (!IsConfigOverride(argv[i])) {
      rest.push_back(argv[i]);
      continue;
    }
    const char* eq = std::strchr(argv[i], '=');
    if (eq == nullptr) {
      std::fprintf(stderr, "lrkv: %s needs a value: %s=VALUE\n", argv[i], argv[i]);
      return 2;
    }
    overrides.emplace_back(std::string(static_cast<const char*>(argv[i]) + 2, eq), std::string(eq + 1));
  }
  const std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(rest.size()), rest.data());
  if (positional.size() > 1) {
    std::fprintf(stderr, "lrkv %s: unexpected argument '%s'\n", command.c_str(), positional[1]);
    return 2;
  }
  absl::Status status;
  if (command == "train") {
    status = lrkv::RunTrainCommand(overrides);
  } else {
    std::fprintf(stderr, "lrkv: unknown command '%s'\n%s\n", command.c_str(), kUsage);
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "lrkv %s: error: %s\n", command.c_str(), std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
