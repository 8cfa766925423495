#include "launch/cli/tokenizer_process.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/status.h"

extern char** environ;

namespace lrkv {

absl::StatusOr<std::unique_ptr<TokenizerProcess>> TokenizerProcess::Start(const std::string& model_file) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  LRKV_REQUIRE(!ec, "cannot locate the lrkv binary: ", ec.message());
  const std::string tool = (self.parent_path() / "lrkv-tokenize").string();
  int in[2], out[2];  // in: we write, it reads; out: it writes, we read
  LRKV_REQUIRE(pipe(in) == 0 && pipe(out) == 0, "cannot make pipes for ", tool, ": ", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  for (int fd : {in[0], in[1], out[0], out[1]}) posix_spawn_file_actions_addclose(&actions, fd);
  const std::string flag = "--model=" + model_file;
  char* args[] = {const_cast<char*>(tool.c_str()), const_cast<char*>(flag.c_str()), nullptr};
  auto p = std::unique_ptr<TokenizerProcess>(new TokenizerProcess());
  const int spawned = posix_spawn(&p->pid_, tool.c_str(), &actions, nullptr, args, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  p->to_ = fdopen(in[1], "w");
  p->from_ = fdopen(out[0], "r");
  p->model_file_ = model_file;
  if (spawned != 0) p->pid_ = -1;
  LRKV_REQUIRE(spawned == 0, "cannot run ", tool, ": ", std::strerror(spawned));
  LRKV_TRY(p->Encode("").status());  // reports a tokenizer that did not load
  return p;
}

TokenizerProcess::~TokenizerProcess() {
  if (to_ != nullptr) fclose(to_);  // end of input: it exits
  if (from_ != nullptr) fclose(from_);
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

absl::StatusOr<std::string> TokenizerProcess::Ask(const std::string& request, const char* key) {
  LRKV_REQUIRE(std::fputs((request + "\n").c_str(), to_) >= 0 && std::fflush(to_) == 0,
               "the tokenizer process (lrkv-tokenize) is gone");
  char* line = nullptr;
  size_t capacity = 0;
  const ssize_t n = getline(&line, &capacity, from_);
  const std::string reply = n > 0 ? std::string(line, n) : "";
  std::free(line);
  LRKV_REQUIRE(n > 0, "the tokenizer process (lrkv-tokenize) ended without answering");
  const nlohmann::json j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
  LRKV_REQUIRE(j.is_object(), "the tokenizer process answered '", reply.substr(0, 80), "'");
  LRKV_REQUIRE(!j.contains("error"), "tokenizer ", model_file_, ": ", j.value("error", std::string()));
  LRKV_REQUIRE(j.contains(key), "the tokenizer process answered without \"", key, "\"");
  return j[key].dump();
}

absl::StatusOr<std::vector<int32_t>> TokenizerProcess::Encode(const std::string& text) {
  const nlohmann::json request = {{"encode", text}};
  LRKV_TRY_ASSIGN(const std::string ids,
                  Ask(request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "ids"));
  return nlohmann::json::parse(ids).get<std::vector<int32_t>>();
}

absl::StatusOr<std::string> TokenizerProcess::Decode(const std::vector<int32_t>& ids) {
  LRKV_TRY_ASSIGN(const std::string text, Ask(nlohmann::json({{"decode", ids}}).dump(), "text"));
  return nlohmann::json::parse(text).get<std::string>();
}

}  // namespace lrkv
