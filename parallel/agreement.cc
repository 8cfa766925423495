#include "parallel/agreement.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
constexpr char kStoppedOnEveryRank[] = "lrkv/stopped-on-every-rank";

absl::Status ReduceOverGroup(Communicator& group, std::vector<double>& values, ReduceOp op) {
  if (group.size() == 1 || values.empty()) return absl::OkStatus();
  LRKV_TRY_ASSIGN(Tensor t, Tensor::Empty({int64_t(values.size())}, DType::kF64));
  std::copy(values.begin(), values.end(), t.data<double>());
  LRKV_TRY(group.AllReduce(t, op));
  std::copy(t.data<double>(), t.data<double>() + values.size(), values.begin());
  return absl::OkStatus();
}

}  // namespace

absl::Status SumOverGroup(Communicator& group, std::vector<double>& values) {
  return ReduceOverGroup(group, values, ReduceOp::kSum);
}

absl::Status MaxOverGroup(Communicator& group, std::vector<double>& values) {
  return ReduceOverGroup(group, values, ReduceOp::kMax);
}

absl::Status SendString(Communicator& c, const std::string& s, int peer) {
  LRKV_TRY_ASSIGN(Tensor length, Tensor::Empty({1}, DType::kI32));
  length.data<int32_t>()[0] = static_cast<int32_t>(s.size());
  LRKV_TRY_ASSIGN(Tensor words, Tensor::Zeros({int64_t(s.size() + 3) / 4}, DType::kI32));
  std::memcpy(words.raw(), s.data(), s.size());
  LRKV_TRY(c.Send(length, peer));
  return c.Send(words, peer);
}

absl::StatusOr<std::string> RecvString(Communicator& c, int peer) {
  LRKV_TRY_ASSIGN(Tensor length, Tensor::Empty({1}, DType::kI32));
  LRKV_TRY(c.Recv(length, peer));
  const int32_t n = length.data<int32_t>()[0];
  LRKV_TRY_ASSIGN(Tensor words, Tensor::Empty({int64_t(n + 3) / 4}, DType::kI32));
  LRKV_TRY(c.Recv(words, peer));
  return std::string(static_cast<const char*>(words.raw()), n);
}

absl::Status AgreeOnStatus(Communicator& group, const absl::Status& local) {
  // The lowest failing rank, or size when none failed.
  LRKV_TRY_ASSIGN(Tensor first, Tensor::Empty({1}, DType::kI32));
  first.data<int32_t>()[0] = local.ok() ? -group.size() : -group.rank();
  LRKV_TRY(group.AllReduce(first, ReduceOp::kMax));
  const int failed = -first.data<int32_t>()[0];
  if (failed == group.size()) return absl::OkStatus();
  // Its code and message, broadcast as bytes.
  std::string text = local.ok() ? "" : std::string(1, char(local.code())) + std::string(local.message());
  LRKV_TRY_ASSIGN(Tensor length, Tensor::Empty({1}, DType::kI32));
  length.data<int32_t>()[0] = static_cast<int32_t>(text.size());
  LRKV_TRY(group.Broadcast(length, failed));
  LRKV_TRY_ASSIGN(Tensor words, Tensor::Zeros({int64_t(length.data<int32_t>()[0] + 3) / 4}, DType::kI32));
  if (group.rank() == failed) std::memcpy(words.raw(), text.data(), text.size());
  LRKV_TRY(group.Broadcast(words, failed));
  text.assign(static_cast<const char*>(words.raw()), length.data<int32_t>()[0]);
  absl::Status agreed(static_cast<absl::StatusCode>(text[0]),
                      group.rank() == failed ? text.substr(1) : absl::StrCat(text.substr(1), " (rank ", failed, ")"));
  agreed.SetPayload(kStoppedOnEveryRank, absl::Cord("1"));
  return agreed;
}

bool StoppedOnEveryRank(const absl::Status& status) { return status.GetPayload(kStoppedOnEveryRank).has_value(); }

}  // namespace lrkv
