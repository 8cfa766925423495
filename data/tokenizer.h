// Byte-fallback BPE tokenizer (sentencepiece). Decode(Encode(s)) == s for any UTF-8 string: no
// text normalisation is applied and unseen characters fall back to byte pieces.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lrkv::data {

namespace internal {
class SpModel;
}

class Tokenizer {
 public:
  // Trains a BPE model on `text_file` (one sentence per line) and writes model_prefix.model and
  // model_prefix.vocab. Ids: unk = 0, bos = 1, eos = 2, no pad piece.
  static absl::Status Train(const std::string& text_file, int vocab_size,
                            const std::string& model_prefix);
  static absl::StatusOr<Tokenizer> Load(const std::string& model_file);

  std::vector<int32_t> Encode(std::string_view text) const;
  // Ids outside [0, vocab_size) (e.g. from a model whose vocabulary is padded) decode as unk.
  std::string Decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;

 private:
  explicit Tokenizer(std::shared_ptr<const internal::SpModel> model) : model_(std::move(model)) {}
  // Shared and immutable: copies are cheap and Encode/Decode are safe from many threads.
  std::shared_ptr<const internal::SpModel> model_;
};

}  // namespace lrkv::data
