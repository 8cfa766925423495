// The run's tokenizer for a process that holds a model: lrkv-tokenize (tokenize_main.cc) started
// beside the lrkv binary, spoken to over two pipes, ended when this object goes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv {

class TokenizerProcess {
 public:
  // Starts lrkv-tokenize on `model_file` (a tokenizer.model) and checks that it loaded it.
  static absl::StatusOr<std::unique_ptr<TokenizerProcess>> Start(const std::string& model_file);
  ~TokenizerProcess();
  TokenizerProcess(const TokenizerProcess&) = delete;
  TokenizerProcess& operator=(const TokenizerProcess&) = delete;

  absl::StatusOr<std::vector<int32_t>> Encode(const std::string& text);
  absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids);

 private:
  TokenizerProcess() = default;
  // One request line, one reply line; a reply carrying "error" becomes the status.
  absl::StatusOr<std::string> Ask(const std::string& request, const char* key);

  pid_t pid_ = -1;
  FILE* to_ = nullptr;    // its stdin
  FILE* from_ = nullptr;  // its stdout
  std::string model_file_;
};

}  // namespace lrkv
