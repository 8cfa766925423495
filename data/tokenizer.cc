#include "data/tokenizer.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "data/sentencepiece_bridge.h"
#include "runtime/status.h"

namespace lrkv::data {

absl::Status Tokenizer::Train(const std::string& text_file, int vocab_size,
                              const std::string& model_prefix) {
  LRKV_REQUIRE(vocab_size > 0, "Tokenizer::Train: vocab_size must be positive, got ", vocab_size);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(text_file, ec)) {
    return absl::NotFoundError(absl::StrCat("Tokenizer::Train: no training text ", text_file));
  }
  // A map, not a command line: paths with spaces need no quoting.
  const std::map<std::string, std::string> args = {
      {"input", text_file},
      {"model_prefix", model_prefix},
      {"vocab_size", absl::StrCat(vocab_size)},
      {"model_type", "bpe"},
      {"character_coverage", "1.0"},
      {"byte_fallback", "true"},
      // Exact round trips: no NFKC, keep whitespace as written.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"num_threads", "2"},
      // Brown (55k sentences) trains in ~3.5 s on 2 cores; larger corpora are subsampled to
      // 1M sentences to bound training time and memory.
      {"input_sentence_size", "1000000"},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", "16384"},
      {"minloglevel", "2"},
  };
  const std::string error = internal::SpTrain(args);
  if (!error.empty()) {
    return absl::InternalError(absl::StrCat("sentencepiece training on ", text_file,
                                            " (vocab_size ", vocab_size, ") failed: ", error));
  }
  return absl::OkStatus();
}

absl::StatusOr<Tokenizer> Tokenizer::Load(const std::string& model_file) {
  std::error_code ec;
  if (!std::filesystem::exists(model_file, ec)) {
    return absl::NotFoundError(absl::StrCat("tokenizer model ", model_file, ": no such file"));
  }
  std::string error;
  std::unique_ptr<internal::SpModel> model = internal::SpModel::Load(model_file, &error);
  if (model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer model ", model_file, ": cannot load: ", error));
  }
  return Tokenizer(std::shared_ptr<const internal::SpModel>(std::move(model)));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  std::string error;
  // With byte fallback every byte string is encodable, so a failure is a bug, not bad input.
  if (!model_->Encode(text, &ids, &error)) {
    std::fprintf(stderr, "Tokenizer::Encode failed: %s\n", error.c_str());
    std::abort();
  }
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::vector<int32_t> safe(ids);
  const int n = model_->vocab_size(), unk = model_->unk_id();
  for (int32_t& id : safe) {
    if (id < 0 || id >= n) id = unk;
  }
  std::string text, error;
  if (!model_->Decode(safe, &text, &error)) {
    std::fprintf(stderr, "Tokenizer::Decode failed: %s\n", error.c_str());
    std::abort();
  }
  return text;
}

int Tokenizer::vocab_size() const { return model_->vocab_size(); }
int Tokenizer::bos_id() const { return model_->bos_id(); }
int Tokenizer::eos_id() const { return model_->eos_id(); }

}  // namespace lrkv::data
