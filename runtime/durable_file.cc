#include "runtime/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace lrkv {
namespace {

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}

std::string Parent(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace

absl::Status WriteFileSynced(const std::string& path, const std::vector<std::pair<const char*, size_t>>& buffers) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", path);
  for (const auto& [data, size] : buffers) {
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd, data + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const absl::Status s = Errno("cannot write", path);
        ::close(fd);
        return s;
      }
      done += static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) {
    const absl::Status s = Errno("cannot sync", path);
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return Errno("cannot close", path);
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open directory", path);
  const int r = ::fsync(fd);
  ::close(fd);
  if (r != 0) return Errno("cannot sync directory", path);
  return absl::OkStatus();
}

absl::Status WriteFileDurably(const std::string& path, const std::vector<std::pair<const char*, size_t>>& buffers) {
  const std::string tmp = path + ".tmp";
  absl::Status status = WriteFileSynced(tmp, buffers);
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = Errno(absl::StrCat("cannot rename ", tmp, " to"), path);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return SyncDirectory(Parent(path));
}

absl::Status WriteFileDurably(const std::string& path, std::string_view bytes) {
  return WriteFileDurably(path, {{bytes.data(), bytes.size()}});
}

}  // namespace lrkv
