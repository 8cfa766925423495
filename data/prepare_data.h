// prepare-data: corpus -> plain text -> tokenizer -> train/val token shards + meta.json.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace lrkv::data {

struct PrepareDataOptions {
  std::string corpus = "brown";  // The only corpus known so far.
  std::string out_dir;
  int vocab_size = 8192;
  double val_fraction = 0.05;  // Of documents, at least one.
  uint64_t seed = 1234;        // Chooses the validation documents.
  std::string cache_dir;       // Where the raw corpus is fetched; default out_dir/cache.
};

// Writes into out_dir: train.txt (tokenizer training text), tokenizer.model/.vocab, train.bin,
// val.bin (token shards, an eos after every document) and meta.json (counts and the unigram
// entropy baselines). Returns OK at once when out_dir already holds valid output for the same
// options.
absl::Status PrepareData(const PrepareDataOptions& options);

}  // namespace lrkv::data
