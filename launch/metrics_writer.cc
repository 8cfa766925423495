#include "launch/metrics_writer.h"

#include <cinttypes>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace lrkv {

JsonRecord& JsonRecord::Add(const std::string& key, double value) {
  // JSON has no NaN or infinity; a non-finite value is written as null.
  fields_.emplace_back(key, std::isfinite(value) ? absl::StrFormat("%.9g", value) : "null");
  return *this;
}
JsonRecord& JsonRecord::Add(const std::string& key, int64_t value) {
  fields_.emplace_back(key, absl::StrCat(value));
  return *this;
}
JsonRecord& JsonRecord::Add(const std::string& key, const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    escaped.push_back(c);
  }
  fields_.emplace_back(key, absl::StrCat("\"", escaped, "\""));
  return *this;
}

std::string JsonRecord::ToString() const {
  return absl::StrCat("{", absl::StrJoin(fields_, ", ", [](std::string* out, const auto& kv) {
                        absl::StrAppend(out, "\"", kv.first, "\": ", kv.second);
                      }),
                      "}");
}

absl::StatusOr<MetricsWriter> MetricsWriter::Open(const std::string& path, int64_t keep_through_step) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::string kept;
  if (keep_through_step >= 0) {
    std::ifstream in(path);
    int64_t step = 0;
    for (std::string line; std::getline(in, line);) {
      // Records start with {"step": N (JsonRecord keeps insertion order).
      if (std::sscanf(line.c_str(), "{\"step\": %" SCNd64, &step) == 1 && step <= keep_through_step) {
        kept += line + "\n";
      }
    }
  }
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat("cannot write metrics file ", path));
  std::fputs(kept.c_str(), f);
  std::fflush(f);
  return MetricsWriter(f);
}

MetricsWriter::~MetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status MetricsWriter::Write(const JsonRecord& record) {
  const std::string line = record.ToString() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    return absl::DataLossError("writing the metrics file failed (disk full?)");
  }
  return absl::OkStatus();
}

absl::Status WriteJsonFile(const std::string& path, const JsonRecord& record) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  const std::string text = record.ToString() + "\n";
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) return absl::DataLossError(absl::StrCat("writing ", path, " failed"));
  return absl::OkStatus();
}

}  // namespace lrkv
