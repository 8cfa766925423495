#include "launch/train/metrics_writer.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "runtime/durable_file.h"

namespace lrkv {
namespace {

// The "step" of one JSONL line; -1 for a line that is not a whole record (a write cut short).
int64_t StepOf(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) return -1;
  return j["step"].get<int64_t>();
}

}  // namespace

JsonRecord& JsonRecord::Add(const std::string& key, double value) {
  if (std::isfinite(value)) {
    fields_[key] = value;
  } else {
    fields_[key] = nullptr;  // JSON has no NaN or infinity
  }
  return *this;
}
JsonRecord& JsonRecord::Add(const std::string& key, int64_t value) {
  fields_[key] = value;
  return *this;
}
JsonRecord& JsonRecord::Add(const std::string& key, const std::string& value) {
  fields_[key] = value;
  return *this;
}

// Invalid UTF-8 in a string (a path, say) is replaced rather than thrown on.
std::string JsonRecord::ToString() const { return fields_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

absl::StatusOr<MetricsWriter> MetricsWriter::Open(const std::string& path, int64_t keep_through_step) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::string kept;
  int64_t last = -1;
  if (keep_through_step >= 0) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      const int64_t step = StepOf(line);
      if (step >= 0 && step <= keep_through_step) {
        kept += line + "\n";
        last = step;
      }
    }
  }
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat("cannot write metrics file ", path));
  std::fputs(kept.c_str(), f);
  std::fflush(f);
  return MetricsWriter(f, last);
}

MetricsWriter::~MetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status MetricsWriter::WriteLine(const std::string& json) {
  const std::string line = json + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    return absl::DataLossError("writing the metrics file failed (disk full?)");
  }
  return absl::OkStatus();
}

absl::Status MetricsWriter::Write(const JsonRecord& record) { return WriteLine(record.ToString()); }

absl::Status WriteJsonFile(const std::string& path, const JsonRecord& record) {
  return WriteFileDurably(path, record.ToString() + "\n");
}

}  // namespace lrkv
