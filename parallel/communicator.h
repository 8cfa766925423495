// Collective and point-to-point communication within one group of ranks, independent of the
// transport. MpiCommunicator (host memory) implements it now; an NCCL implementation (device
// memory) plugs in behind the same interface. Every call records the bytes it moves, by kind.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

enum class CommKind : int { kAllReduce = 0, kAllGather, kReduceScatter, kBroadcast, kSendRecv, kCount };
const char* CommKindName(CommKind k);
enum class ReduceOp { kSum, kMax };

// Payload bytes per kind, as seen by this rank: all-reduce counts the buffer size, all-gather the
// gathered output, reduce-scatter the input, broadcast the buffer, send/recv the messages sent.
struct CommStats {
  std::array<int64_t, static_cast<int>(CommKind::kCount)> bytes{};
  std::array<int64_t, static_cast<int>(CommKind::kCount)> calls{};
  int64_t total_bytes() const;
  void Reset() { *this = CommStats(); }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place over the whole tensor.
  virtual absl::Status AllReduce(Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  // out (size * in.numel elements) = concatenation of every rank's `in`, in rank order.
  virtual absl::Status AllGather(const Tensor& in, Tensor& out) = 0;
  // out (in.numel / size elements) = rank's block of the element-wise sum of every rank's `in`.
  virtual absl::Status ReduceScatter(const Tensor& in, Tensor& out) = 0;
  virtual absl::Status Broadcast(Tensor& t, int root) = 0;
  virtual absl::Status Send(const Tensor& t, int peer) = 0;
  virtual absl::Status Recv(Tensor& t, int peer) = 0;
  // Starts sending `t` to `peer` and returns at once (the pipeline schedule's sends, so that two
  // neighbouring stages never wait on each other's blocking send). `t` is kept alive and must not
  // change until WaitSends.
  virtual absl::Status SendAsync(const Tensor& t, int peer) = 0;
  // Waits until every SendAsync of this group has completed.
  virtual absl::Status WaitSends() = 0;
  virtual absl::Status Barrier() = 0;

  const std::string& name() const { return name_; }  // "tp", "pp", "dp", "world"
  CommStats& stats() { return stats_; }

 protected:
  explicit Communicator(std::string name) : name_(std::move(name)) {}
  void Record(CommKind k, int64_t bytes) {
    stats_.bytes[static_cast<int>(k)] += bytes;
    stats_.calls[static_cast<int>(k)] += 1;
  }

 private:
  std::string name_;
  CommStats stats_;
};

}  // namespace lrkv
