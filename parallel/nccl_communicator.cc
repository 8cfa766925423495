#include "parallel/nccl_communicator.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/device.h"
#include "runtime/status.h"

namespace lrkv {
namespace cuda {
// LRKV_CUDA_TRY's overload for NCCL. ncclInProgress is not an error: non-blocking communicators
// return it while they enqueue in the background (NcclCommunicator::WaitIssued polls for the end).
absl::Status CallStatus(ncclResult_t result, const char* call, const char* file, int line) {
  if (result == ncclSuccess || result == ncclInProgress) return absl::OkStatus();
  const std::string message = absl::StrCat(call, " failed at ", file, ":", line, ": ", ncclGetErrorString(result));
  switch (result) {
    case ncclInvalidArgument:
    case ncclInvalidUsage: return absl::InvalidArgumentError(message);
    case ncclSystemError:
    case ncclRemoteError: return absl::UnavailableError(message);
    default: return absl::InternalError(message);
  }
}
}  // namespace cuda

namespace {

using Clock = std::chrono::steady_clock;

absl::StatusOr<ncclDataType_t> NcclType(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kF32: return ncclFloat32;
    case DType::kF64: return ncclFloat64;
    case DType::kBF16: return ncclBfloat16;
    case DType::kI32: return ncclInt32;
  }
  return absl::UnimplementedError(absl::StrCat("NCCL collectives on ", DTypeName(t.dtype()), " tensors"));
}

absl::Status DeviceOnly(const Tensor& t, const char* call) {
  LRKV_REQUIRE(t.device() == Device::kCuda, call, ": the NCCL communicator works on CUDA tensors, got ",
               t.DebugString());
  return absl::OkStatus();
}

ncclConfig_t NonBlockingConfig() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return config;
}

// Closes an NCCL group on every path out of a scope.
class GroupScope {
 public:
  GroupScope() { open_ = ncclGroupStart() == ncclSuccess; }
  ~GroupScope() {
    if (open_) ncclGroupEnd();
  }
  bool ok() const { return open_; }
  ncclResult_t End() {
    open_ = false;
    return ncclGroupEnd();
  }

 private:
  bool open_ = false;
};

}  // namespace

NcclCommunicator::NcclCommunicator(ncclComm_t comm, std::string name, double timeout_s)
    : Communicator(std::move(name)), comm_(comm), timeout_s_(timeout_s) {}

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(MPI_Comm mpi, std::string name,
                                                                            double timeout_s) {
  LRKV_TRY(cuda::EnsureInitialized());
  int rank = 0, size = 1;
  LRKV_REQUIRE(MPI_Comm_rank(mpi, &rank) == MPI_SUCCESS && MPI_Comm_size(mpi, &size) == MPI_SUCCESS,
               "NcclCommunicator::Create(", name, "): not an MPI communicator");
  ncclUniqueId id{};
  if (rank == 0) LRKV_CUDA_TRY(ncclGetUniqueId(&id));
  if (MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi) != MPI_SUCCESS) {
    return absl::UnavailableError(absl::StrCat("broadcasting the NCCL id of the ", name, " group over MPI failed"));
  }
  ncclConfig_t config = NonBlockingConfig();
  ncclComm_t comm = nullptr;
  LRKV_CUDA_TRY(ncclCommInitRankConfig(&comm, size, id, rank, &config));
  std::unique_ptr<NcclCommunicator> c(new NcclCommunicator(comm, std::move(name), timeout_s));
  LRKV_TRY(c->WaitIssued("ncclCommInitRankConfig"));
  LRKV_CUDA_TRY(ncclCommCount(comm, &c->size_));
  LRKV_CUDA_TRY(ncclCommUserRank(comm, &c->rank_));
  return c;
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ == nullptr) return;
  if (aborted_) return;  // ncclCommAbort freed it
  // Finalize flushes outstanding work; on any failure (or a timeout) abort instead of hanging.
  const ncclResult_t r = ncclCommFinalize(comm_);
  if (r != ncclSuccess && r != ncclInProgress) {
    ncclCommAbort(comm_);
    return;
  }
  if (!WaitIssued("ncclCommFinalize").ok()) return;  // WaitIssued aborted it
  ncclCommDestroy(comm_);
}

absl::Status NcclCommunicator::Usable(const char* call) const {
  if (aborted_) {
    return absl::FailedPreconditionError(
        absl::StrCat(call, ": the NCCL communicator of the ", name(), " group was aborted after an earlier error"));
  }
  return absl::OkStatus();
}

absl::Status NcclCommunicator::Abort(absl::Status why) {
  if (!aborted_) {
    ncclCommAbort(comm_);
    aborted_ = true;
    pending_.clear();
  }
  return why;
}

absl::Status NcclCommunicator::WaitIssued(const char* call) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s_);
  while (true) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) state = r;
    if (state == ncclSuccess) return absl::OkStatus();
    if (state != ncclInProgress) {
      return Abort(absl::UnavailableError(absl::StrCat(call, " on the ", name(), " group failed: ",
                                                       ncclGetErrorString(state), " (", ncclGetLastError(comm_), ")")));
    }
    if (Clock::now() > deadline) {
      return Abort(absl::DeadlineExceededError(absl::StrCat(call, " on the ", name(), " group did not complete within ",
                                                            timeout_s_, " s; the communicator was aborted")));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

absl::Status NcclCommunicator::WaitDone(const char* call) {
  LRKV_TRY(WaitIssued(call));
  LRKV_TRY_ASSIGN(cuda::Event done, cuda::Event::Create());
  LRKV_TRY(done.Record(cuda::CurrentStream()));
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s_);
  while (true) {
    absl::StatusOr<bool> finished = done.Done();
    if (!finished.ok()) return Abort(finished.status());
    if (*finished) return absl::OkStatus();
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) state = r;
    if (state != ncclSuccess && state != ncclInProgress) {
      return Abort(absl::UnavailableError(absl::StrCat(call, " on the ", name(), " group failed: ",
                                                       ncclGetErrorString(state), " (", ncclGetLastError(comm_), ")")));
    }
    if (Clock::now() > deadline) {
      return Abort(absl::DeadlineExceededError(absl::StrCat(call, " on the ", name(), " group did not complete within ",
                                                            timeout_s_, " s (a peer may have failed or never called)",
                                                            "; the communicator was aborted")));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

absl::Status NcclCommunicator::EnqueuePendingSends() {
  for (const PendingSend& s : pending_) {
    LRKV_TRY_ASSIGN(ncclDataType_t type, NcclType(s.tensor));
    LRKV_CUDA_TRY(ncclSend(s.tensor.raw(), s.tensor.numel(), type, s.peer, comm_, cuda::CurrentStream()));
  }
  return absl::OkStatus();
}

absl::Status NcclCommunicator::WaitSends() {
  LRKV_TRY(Usable("WaitSends"));
  if (pending_.empty()) return absl::OkStatus();
  {
    GroupScope group;
    LRKV_REQUIRE(group.ok(), "ncclGroupStart failed on the ", name(), " group");
    LRKV_TRY(EnqueuePendingSends());
    LRKV_CUDA_TRY(group.End());
  }
  const absl::Status s = WaitDone("ncclSend (deferred)");
  pending_.clear();
  return s;
}

absl::Status NcclCommunicator::AllReduce(Tensor& t, ReduceOp op) {
  LRKV_TRY(Usable("AllReduce"));
  LRKV_TRY(DeviceOnly(t, "AllReduce"));
  LRKV_TRY_ASSIGN(ncclDataType_t type, NcclType(t));
  LRKV_TRY(WaitSends());
  Record(CommKind::kAllReduce, t.nbytes());
  LRKV_CUDA_TRY(ncclAllReduce(t.raw(), t.raw(), t.numel(), type, op == ReduceOp::kSum ? ncclSum : ncclMax, comm_,
                              cuda::CurrentStream()));
  return WaitDone("ncclAllReduce");
}

absl::Status NcclCommunicator::AllGather(const Tensor& in, Tensor& out) {
  LRKV_TRY(Usable("AllGather"));
  LRKV_TRY(DeviceOnly(in, "AllGather"));
  LRKV_TRY(DeviceOnly(out, "AllGather"));
  LRKV_REQUIRE(out.numel() == in.numel() * size_ && out.dtype() == in.dtype(), "AllGather: output ",
               out.DebugString(), " must hold ", size_, " x ", in.DebugString());
  LRKV_TRY_ASSIGN(ncclDataType_t type, NcclType(in));
  LRKV_TRY(WaitSends());
  Record(CommKind::kAllGather, out.nbytes());
  LRKV_CUDA_TRY(ncclAllGather(in.raw(), out.raw(), in.numel(), type, comm_, cuda::CurrentStream()));
  return WaitDone("ncclAllGather");
}

absl::Status NcclCommunicator::ReduceScatter(const Tensor& in, Tensor& out) {
  LRKV_TRY(Usable("ReduceScatter"));
  LRKV_TRY(DeviceOnly(in, "ReduceScatter"));
  LRKV_TRY(DeviceOnly(out, "ReduceScatter"));
  LRKV_REQUIRE(in.numel() == out.numel() * size_ && out.dtype() == in.dtype(), "ReduceScatter: input ",
               in.DebugString(), " must hold ", size_, " x ", out.DebugString());
  LRKV_TRY_ASSIGN(ncclDataType_t type, NcclType(in));
  LRKV_TRY(WaitSends());
  Record(CommKind::kReduceScatter, in.nbytes());
  LRKV_CUDA_TRY(ncclReduceScatter(in.raw(), out.raw(), out.numel(), type, ncclSum, comm_, cuda::CurrentStream()));
  return WaitDone("ncclReduceScatter");
}

absl::Status NcclCommunicator::Broadcast(Tensor& t, int root) {
  LRKV_TRY(Usable("Broadcast"));
  LRKV_TRY(DeviceOnly(t, "Broadcast"));
  LRKV_TRY_ASSIGN(ncclDataType_t type, NcclType(t));
  LRKV_TRY(WaitSends());
  Record(CommKind::kBroadcast, t.nbytes());
  LRKV_CUDA_TRY(ncclBroadcast(t.raw(), t.raw(), t.numel(), type, root, comm_, cuda::CurrentStream()));
  return WaitDone("ncclBroadcast");
}

absl::Status NcclCommunicator::Send(const Tensor& t, int peer) {
  LRKV_TRY(Usable("Send"));
  LRKV_TRY(DeviceOnly(t, "Send"));
  LRKV_TRY_ASSIGN(ncclDataType_t type, NcclType(t));
  LRKV_TRY(WaitSends());
  Record(CommKind::kSendRecv, t.nbytes());
  LRKV_CUDA_TRY(ncclSend(t.raw(), t.numel(), type, peer, comm_, cuda::CurrentStream()));
  return WaitDone("ncclSend");
}

// NCCL does not report the size of a received message: a sender and receiver that disagree on it
// are an error the MPI communicator detects and this one does not (the test suites run on MPI).
absl::Status NcclCommunicator::Recv(Tensor& t, int peer) {
  LRKV_TRY(Usable("Recv"));
  LRKV_TRY(DeviceOnly(t, "Recv"));
  LRKV_TRY_ASSIGN(ncclDataType_t type, NcclType(t));
  {
    GroupScope group;
    LRKV_REQUIRE(group.ok(), "ncclGroupStart failed on the ", name(), " group");
    LRKV_TRY(EnqueuePendingSends());
    LRKV_CUDA_TRY(ncclRecv(t.raw(), t.numel(), type, peer, comm_, cuda::CurrentStream()));
    LRKV_CUDA_TRY(group.End());
  }
  const absl::Status s = WaitDone(pending_.empty() ? "ncclRecv" : "ncclRecv (with deferred sends)");
  pending_.clear();
  return s;
}

absl::Status NcclCommunicator::SendAsync(const Tensor& t, int peer) {
  LRKV_TRY(Usable("SendAsync"));
  LRKV_TRY(DeviceOnly(t, "SendAsync"));
  LRKV_TRY(NcclType(t).status());
  LRKV_REQUIRE(peer >= 0 && peer < size_, "SendAsync on the ", name(), " group: no rank ", peer);
  Record(CommKind::kSendRecv, t.nbytes());
  pending_.push_back(PendingSend{t, peer});
  return absl::OkStatus();
}

absl::Status NcclCommunicator::Barrier() {
  LRKV_TRY(Usable("Barrier"));
  if (!barrier_.defined()) {
    LRKV_TRY_ASSIGN(barrier_, Tensor::Zeros({1}, DType::kI32, Device::kCuda));
  }
  LRKV_TRY(WaitSends());
  LRKV_CUDA_TRY(ncclAllReduce(barrier_.raw(), barrier_.raw(), 1, ncclInt32, ncclSum, comm_, cuda::CurrentStream()));
  return WaitDone("Barrier (ncclAllReduce)");
}

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Split(int color, int key, std::string name) {
  LRKV_TRY(Usable("Split"));
  LRKV_TRY(WaitSends());
  // A non-blocking split writes the new handle when it completes, which can be after a timeout has
  // returned from here: the cells it writes live on the heap and are leaked on that path, rather
  // than being stack slots that a late write would corrupt.
  struct SplitCells {
    ncclConfig_t config;
    ncclComm_t sub = nullptr;
  };
  auto cells = std::make_unique<SplitCells>();
  cells->config = NonBlockingConfig();
  LRKV_CUDA_TRY(ncclCommSplit(comm_, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &cells->sub, &cells->config));
  if (absl::Status issued = WaitIssued("ncclCommSplit"); !issued.ok()) {
    (void)cells.release();  // deliberately leaked, see above
    return issued;
  }
  const ncclComm_t sub = cells->sub;
  if (sub == nullptr) return std::unique_ptr<NcclCommunicator>();
  std::unique_ptr<NcclCommunicator> c(new NcclCommunicator(sub, std::move(name), timeout_s_));
  LRKV_TRY(c->WaitIssued("ncclCommSplit (new group)"));
  LRKV_CUDA_TRY(ncclCommCount(sub, &c->size_));
  LRKV_CUDA_TRY(ncclCommUserRank(sub, &c->rank_));
  return c;
}

}  // namespace lrkv
