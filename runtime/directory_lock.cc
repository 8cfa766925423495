#include "runtime/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lrkv {

absl::StatusOr<DirectoryLock> DirectoryLock::Acquire(const std::string& dir, const std::string& what,
                                                     const std::string& flag) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = dir + "/.lrkv.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " ", dir, " is not writable: cannot create the lock file ", path, ": ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char holder[256] = {};
    const ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat(what, " ", dir, ": cannot lock ", path, ": ", std::strerror(err)));
    }
    const std::string who(absl::StripAsciiWhitespace(std::string(holder, n > 0 ? size_t(n) : 0)));
    return absl::FailedPreconditionError(absl::StrCat(
        what, " ", dir, " is in use by another lrkv job (", who.empty() ? "holder unknown" : who,
        "): two jobs writing one directory would interleave their files; wait for it to end or choose another ",
        flag));
  }
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  const std::string me = absl::StrCat("host ", host, ", pid ", ::getpid(), ", since unix time ", std::time(nullptr), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const absl::Status s =
        absl::UnavailableError(absl::StrCat(what, " ", dir, ": cannot write the lock file ", path, ": ", std::strerror(errno)));
    ::close(fd);
    return s;
  }
  return DirectoryLock(fd);
}

DirectoryLock::DirectoryLock(DirectoryLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  std::swap(fd_, other.fd_);
  return *this;
}
DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace lrkv
