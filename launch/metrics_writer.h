// Appends one JSON object per line to a metrics file (JSONL), flushed after every record so that a
// crashed or killed run keeps everything it logged.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv {

class JsonRecord {
 public:
  JsonRecord& Add(const std::string& key, double value);
  JsonRecord& Add(const std::string& key, int64_t value);
  JsonRecord& Add(const std::string& key, const std::string& value);
  std::string ToString() const;  // {"key": value, ...}

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

class MetricsWriter {
 public:
  // Creates parent directories; truncates an existing file, or with keep_through_step >= 0 keeps
  // its records of steps <= keep_through_step (a resumed run continues the file).
  static absl::StatusOr<MetricsWriter> Open(const std::string& path, int64_t keep_through_step = -1);
  MetricsWriter(MetricsWriter&& other) noexcept : file_(std::exchange(other.file_, nullptr)) {}
  ~MetricsWriter();
  absl::Status Write(const JsonRecord& record);

 private:
  explicit MetricsWriter(FILE* f) : file_(f) {}
  FILE* file_;
};

// Writes `record` as a single JSON object to `path` (e.g. summary.json).
absl::Status WriteJsonFile(const std::string& path, const JsonRecord& record);

}  // namespace lrkv
