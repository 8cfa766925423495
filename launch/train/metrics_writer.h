// Appends one JSON object per line to a metrics file (JSONL), flushed after every record so that a
// crashed or killed run keeps everything it logged. All JSON goes through nlohmann-json.
#pragma once

#include <cstdio>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lrkv {

// One JSON object whose keys keep the order they were added in ("step" first).
class JsonRecord {
 public:
  JsonRecord& Add(const std::string& key, double value);  // non-finite values are written as null
  JsonRecord& Add(const std::string& key, int64_t value);
  JsonRecord& Add(const std::string& key, const std::string& value);
  std::string ToString() const;  // one line

 private:
  nlohmann::ordered_json fields_ = nlohmann::ordered_json::object();
};

class MetricsWriter {
 public:
  // Creates parent directories; truncates an existing file, or with keep_through_step >= 0 keeps
  // its records of steps <= keep_through_step (a resumed run continues the file) and drops any
  // later or half-written line.
  static absl::StatusOr<MetricsWriter> Open(const std::string& path, int64_t keep_through_step = -1);
  MetricsWriter(MetricsWriter&& other) noexcept
      : file_(std::exchange(other.file_, nullptr)), last_step_(other.last_step_) {}
  ~MetricsWriter();
  absl::Status Write(const JsonRecord& record);
  // A record given as its JSON line (a checkpoint's copy of its step's record).
  absl::Status WriteLine(const std::string& json);
  // The step of the last record Open kept from the file (-1: none).
  int64_t last_step() const { return last_step_; }

 private:
  MetricsWriter(FILE* f, int64_t last_step) : file_(f), last_step_(last_step) {}
  FILE* file_;
  int64_t last_step_ = -1;
};

// Writes `record` as a single JSON object to `path` (e.g. summary.json), durably.
absl::Status WriteJsonFile(const std::string& path, const JsonRecord& record);

}  // namespace lrkv
