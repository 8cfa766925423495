// Writing files so that a crash, kill -9 or full disk never leaves a half-written file under the
// final name: the bytes go to PATH.tmp, are fsynced, renamed over PATH, and the directory is
// fsynced so the rename itself survives. Used by every writer whose file a later run reads back
// (checkpoint shards and manifests, `latest`, token shards, summaries and reports).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace lrkv {

// Writes the buffers back to back as PATH (through PATH.tmp); on failure PATH is untouched and
// PATH.tmp removed.
absl::Status WriteFileDurably(const std::string& path, const std::vector<std::pair<const char*, size_t>>& buffers);
absl::Status WriteFileDurably(const std::string& path, std::string_view bytes);

// Writes PATH itself (no rename) and fsyncs it: for files inside a directory that is renamed into
// place afterwards (a checkpoint's shards).
absl::Status WriteFileSynced(const std::string& path, const std::vector<std::pair<const char*, size_t>>& buffers);

// fsync of a directory, so the names created or renamed in it are durable.
absl::Status SyncDirectory(const std::string& path);

}  // namespace lrkv
