#include "launch/reports/metrics_reader.h"

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

absl::StatusOr<double> NumberField(const nlohmann::json& record, const std::string& key, const std::string& where) {
  const auto it = record.find(key);
  LRKV_REQUIRE(it != record.end(), where, ": record has no '", key, "'");
  LRKV_REQUIRE(it->is_number(), where, ": '", key, "' is not a number: ", it->dump());
  return it->get<double>();
}

}  // namespace

absl::StatusOr<std::vector<MetricPoint>> ReadMetricSeries(const std::string& path, const std::string& metric) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open metrics file ", path));
  std::vector<MetricPoint> points;
  std::string line;
  int line_no = 0, records = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = absl::StrCat(path, ":", line_no);
    // nlohmann reports the parse position only through its exception; it stops here.
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": malformed JSON: ", e.what()));
    }
    LRKV_REQUIRE(record.is_object(), where, ": not a JSON object");
    ++records;
    const auto it = record.find(metric);
    if (it == record.end()) continue;
    LRKV_REQUIRE(it->is_number() || it->is_null(), where, ": '", metric, "' is not a number: ", it->dump());
    MetricPoint p;
    p.line = line_no;
    p.value = it->is_null() ? std::numeric_limits<double>::quiet_NaN() : it->get<double>();
    LRKV_TRY_ASSIGN(const double step, NumberField(record, "step", where));
    LRKV_TRY_ASSIGN(const double tokens, NumberField(record, "tokens", where));
    LRKV_TRY_ASSIGN(p.flops_cumulative, NumberField(record, "flops_cumulative", where));
    p.step = static_cast<int64_t>(step);
    p.tokens = static_cast<int64_t>(tokens);
    points.push_back(p);
  }
  LRKV_REQUIRE(!points.empty(), path, ": no record has '", metric, "' (", records, " records read)");
  return points;
}

}  // namespace lrkv
