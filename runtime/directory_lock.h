// An exclusive lock on a directory for the life of a job, so that two jobs never write the same
// run or checkpoint directory: flock(2) on DIR/.lrkv.lock, which also holds "host pid start-time"
// of the holder. The kernel drops the lock when the holder dies, so a lock file left by a killed
// job never blocks the next one.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace lrkv {

class DirectoryLock {
 public:
  // Creates DIR if needed and takes its lock; FailedPrecondition naming the holder's host and pid
  // when another process holds it. Messages call DIR `what` ("checkpoint directory") and name the
  // `flag` that chooses another.
  static absl::StatusOr<DirectoryLock> Acquire(const std::string& dir, const std::string& what,
                                               const std::string& flag);
  DirectoryLock(DirectoryLock&& other) noexcept;
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock();

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace lrkv
