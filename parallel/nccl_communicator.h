// Communicator over NCCL and CUDA device tensors (the CUDA backend's counterpart of
// MpiCommunicator). MPI is used once, to broadcast NCCL's unique id; every transfer is an NCCL call
// enqueued on the CUDA backend's stream (runtime/cuda/device.h).
//
// Errors and hangs: the NCCL communicators are non-blocking (ncclConfig_t.blocking = 0). After each
// call the host polls ncclCommGetAsyncError and the completion of the stream's work; an error comes
// back as a status naming the call and the group, and a call that has not finished within
// `timeout_s` aborts the communicator (ncclCommAbort) and returns DeadlineExceeded naming the group,
// instead of hanging. An aborted communicator refuses further calls.
//
// SendAsync defers the send: it is issued together with this group's next Recv in one NCCL group
// (ncclGroupStart/End), so that two stages that each send and then receive never wait on each
// other; WaitSends (and any other call on this group) issues the deferred sends first.
//
// Never run with NCCL itself (no machine with several GPUs has been available): it runs in CI under
// mpirun against NCCL's and the CUDA runtime's calls carried out on the CPU over MPI
// (tests/parallel/cuda_host_on_cpu_test.cc), which checks its calls' arguments, groups, accounting,
// timeouts and error reports against NCCL's documented semantics, not NCCL's behaviour.
#pragma once

#include <mpi.h>
#include <nccl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace lrkv {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over every rank of `mpi`. The process's CUDA device must be chosen before
  // (cuda::SelectDevice, one GPU per rank); the CUDA backend is initialised here.
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(MPI_Comm mpi, std::string name,
                                                                  double timeout_s = 600);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

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

  // The group of ranks with the same `color` (>= 0), ordered by `key` (ncclCommSplit); null for the
  // ranks that pass a negative color. Collective over this communicator.
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> Split(int color, int key, std::string name);

  ncclComm_t comm() const { return comm_; }
  double timeout_s() const { return timeout_s_; }

 private:
  NcclCommunicator(ncclComm_t comm, std::string name, double timeout_s);
  absl::Status Usable(const char* call) const;
  // Polls until the communicator has finished enqueueing (non-blocking mode) or fails or times out.
  absl::Status WaitIssued(const char* call);
  // Polls until the stream's work enqueued so far is done, or the communicator fails or times out.
  absl::Status WaitDone(const char* call);
  absl::Status Abort(absl::Status why);
  // Enqueues the deferred sends inside the current NCCL group (the caller opens and closes it).
  absl::Status EnqueuePendingSends();

  ncclComm_t comm_ = nullptr;
  int rank_ = 0, size_ = 1;
  double timeout_s_;
  bool aborted_ = false;
  struct PendingSend {
    Tensor tensor;  // kept alive (and unchanged, by contract) until issued and done
    int peer;
  };
  std::vector<PendingSend> pending_;
  Tensor barrier_;  // one device element for Barrier
};

}  // namespace lrkv
