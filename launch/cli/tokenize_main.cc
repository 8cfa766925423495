// lrkv-tokenize --model=DIR/tokenizer.model: the run's sentencepiece tokenizer in a process of its
// own (data/CMakeLists.txt says why it cannot share one with the model), serving `lrkv generate`
// (launch/cli/tokenizer_process.h) one JSON object per line on stdin and stdout:
//   {"encode": "text"} -> {"ids": [..]}     {"decode": [ids]} -> {"text": "..."}
//   anything it cannot do -> {"error": "..."}; it exits at the end of its input.
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "data/tokenizer.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, model, "", "the sentencepiece model (tokenizer.model in a prepare-data directory)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("lrkv-tokenize --model=FILE   (JSON lines on stdin and stdout)");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<lrkv::data::Tokenizer> tokenizer = lrkv::data::Tokenizer::Load(absl::GetFlag(FLAGS_model));
  std::string line;
  while (std::getline(std::cin, line)) {
    nlohmann::json reply;
    if (!tokenizer.ok()) {
      reply["error"] = std::string(tokenizer.status().message());
    } else {
      const nlohmann::json request = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (request.is_object() && request.contains("encode") && request["encode"].is_string()) {
        reply["ids"] = tokenizer->Encode(request["encode"].get<std::string>());
      } else if (request.is_object() && request.contains("decode") && request["decode"].is_array()) {
        reply["text"] = tokenizer->Decode(request["decode"].get<std::vector<int32_t>>());
      } else {
        reply["error"] = "not a request: " + line.substr(0, 80);
      }
    }
    // Decoded text may hold invalid UTF-8 (a byte-fallback character cut short): replace it.
    std::cout << reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  }
  return 0;
}
