// Communicator over an MPI communicator and host memory (a device tensor goes through a host copy).
// MPI errors come back as statuses (MPI_ERRORS_RETURN) naming the call and the group.
#pragma once

#include <mpi.h>

#include <memory>
#include <vector>

#include "parallel/communicator.h"

namespace lrkv {

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (freed on destruction unless it is MPI_COMM_WORLD).
  MpiCommunicator(MPI_Comm comm, std::string name);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  absl::Status AllReduce(Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  absl::Status AllGather(const Tensor& in, Tensor& out) override;
  absl::Status ReduceScatter(const Tensor& in, Tensor& out) override;
  absl::Status Broadcast(Tensor& t, int root) override;
  absl::Status Send(const Tensor& t, int peer) override;
  absl::Status Recv(Tensor& t, int peer) override;
  absl::Status SendAsync(const Tensor& t, int peer) override;
  absl::Status WaitSends() override;
  absl::Status Barrier() override;

  MPI_Comm comm() const { return comm_; }
  // The group of ranks with the same `color`, ordered by `key` (MPI_Comm_split); null for the ranks
  // that pass MPI_UNDEFINED.
  absl::StatusOr<std::unique_ptr<MpiCommunicator>> Split(int color, int key, std::string name) const;

 private:
  absl::Status Check(int mpi_error, const char* call) const;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  struct PendingSend {
    MPI_Request request;
    Tensor tensor;  // the host buffer being sent, kept alive
  };
  std::vector<PendingSend> pending_;
};

}  // namespace lrkv
