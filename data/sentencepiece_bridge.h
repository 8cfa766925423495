// Narrow, Abseil-free interface to sentencepiece. sentencepiece 0.1.97's public header declares
// `namespace absl { using std::string_view; }`, which clashes with Debian's Abseil (built with its
// own absl::string_view), so the two can never meet in one translation unit: only
// sentencepiece_bridge.cc includes sentencepiece, and it includes no Abseil header.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lrkv::data::internal {

// Trains a model from `--key=value` style arguments given as a map; returns "" on success or the
// error message.
std::string SpTrain(const std::map<std::string, std::string>& args);

class SpModel {
 public:
  // Returns nullptr and sets *error on failure.
  static std::unique_ptr<SpModel> Load(const std::string& model_file, std::string* error);
  ~SpModel();

  bool Encode(std::string_view text, std::vector<int32_t>* ids, std::string* error) const;
  bool Decode(const std::vector<int32_t>& ids, std::string* text, std::string* error) const;
  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  int unk_id() const;
  int pad_id() const;

 private:
  struct Impl;
  explicit SpModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lrkv::data::internal
