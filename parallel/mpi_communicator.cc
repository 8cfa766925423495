#include "parallel/mpi_communicator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

absl::StatusOr<MPI_Datatype> MpiType(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kF32: return MPI_FLOAT;
    case DType::kF64: return MPI_DOUBLE;
    case DType::kI32: return MPI_INT;
    case DType::kBF16: return MPI_UINT16_T;  // moved as 16-bit words, reduced by the ops below
  }
  return absl::UnimplementedError(absl::StrCat("MPI collectives on ", DTypeName(t.dtype()), " tensors"));
}

// MPI has no bf16: its sums and maxima add in fp32 and round back to bf16 each time two
// contributions meet, as NCCL's bf16 reductions do.
template <bool kMax>
void Bf16Reduce(void* in, void* inout, int* len, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = BF16BitsToFloat(a[i]), y = BF16BitsToFloat(b[i]);
    b[i] = FloatToBF16Bits(kMax ? std::max(x, y) : x + y);
  }
}

MPI_Op CommutativeOp(MPI_User_function* f) {
  MPI_Op op;
  MPI_Op_create(f, /*commute=*/1, &op);
  return op;
}

MPI_Op MpiOp(const Tensor& t, ReduceOp op) {
  if (t.dtype() != DType::kBF16) return op == ReduceOp::kSum ? MPI_SUM : MPI_MAX;
  static const MPI_Op sum = CommutativeOp(&Bf16Reduce<false>), max = CommutativeOp(&Bf16Reduce<true>);
  return op == ReduceOp::kSum ? sum : max;
}

// MPI reads and writes host memory, so a device tensor travels through a host copy: its elements
// (Staged) or a buffer for them (HostBuffer), copied back after (Unstage). NCCL carries CUDA tensors
// without this (parallel/mesh.h); the copies serve the emulated device and any device without NCCL.
absl::StatusOr<Tensor> Staged(const Tensor& t) {
  return t.device() == Device::kCpu ? t : t.To(Device::kCpu, t.dtype());
}
absl::StatusOr<Tensor> HostBuffer(const Tensor& t) {
  return t.device() == Device::kCpu ? t : Tensor::Empty(t.shape(), t.dtype(), Device::kCpu);
}
absl::Status Unstage(const Tensor& host, Tensor& t) {
  return t.device() == Device::kCpu ? absl::OkStatus() : t.CopyFrom(host);
}

}  // namespace

const char* CommKindName(CommKind k) {
  switch (k) {
    case CommKind::kAllReduce: return "all_reduce";
    case CommKind::kAllGather: return "all_gather";
    case CommKind::kReduceScatter: return "reduce_scatter";
    case CommKind::kBroadcast: return "broadcast";
    case CommKind::kSendRecv: return "send_recv";
    case CommKind::kCount: break;
  }
  return "?";
}

int64_t CommStats::total_bytes() const {
  int64_t t = 0;
  for (int64_t b : bytes) t += b;
  return t;
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name) : Communicator(std::move(name)), comm_(comm) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
}

absl::Status MpiCommunicator::Check(int mpi_error, const char* call) const {
  if (mpi_error == MPI_SUCCESS) return absl::OkStatus();
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(mpi_error, text, &len);
  return absl::UnavailableError(absl::StrCat(call, " on the ", name(), " group failed: ", std::string(text, len)));
}

absl::Status MpiCommunicator::AllReduce(Tensor& t, ReduceOp op) {
  LRKV_TRY_ASSIGN(MPI_Datatype type, MpiType(t));
  LRKV_TRY_ASSIGN(Tensor host, Staged(t));
  Record(CommKind::kAllReduce, t.nbytes());
  LRKV_TRY(Check(MPI_Allreduce(MPI_IN_PLACE, host.raw(), static_cast<int>(t.numel()), type, MpiOp(t, op), comm_),
                 "MPI_Allreduce"));
  return Unstage(host, t);
}

absl::Status MpiCommunicator::AllGather(const Tensor& in, Tensor& out) {
  LRKV_REQUIRE(out.numel() == in.numel() * size_ && out.dtype() == in.dtype(), "AllGather: output ",
               out.DebugString(), " must hold ", size_, " x ", in.DebugString());
  LRKV_TRY_ASSIGN(MPI_Datatype type, MpiType(in));
  LRKV_TRY_ASSIGN(const Tensor host_in, Staged(in));
  LRKV_TRY_ASSIGN(const Tensor host_out, HostBuffer(out));
  Record(CommKind::kAllGather, out.nbytes());
  LRKV_TRY(Check(MPI_Allgather(host_in.raw(), static_cast<int>(in.numel()), type, host_out.raw(),
                               static_cast<int>(in.numel()), type, comm_),
                 "MPI_Allgather"));
  return Unstage(host_out, out);
}

absl::Status MpiCommunicator::ReduceScatter(const Tensor& in, Tensor& out) {
  LRKV_REQUIRE(in.numel() == out.numel() * size_ && out.dtype() == in.dtype(), "ReduceScatter: input ",
               in.DebugString(), " must hold ", size_, " x ", out.DebugString());
  LRKV_TRY_ASSIGN(MPI_Datatype type, MpiType(in));
  LRKV_TRY_ASSIGN(const Tensor host_in, Staged(in));
  LRKV_TRY_ASSIGN(const Tensor host_out, HostBuffer(out));
  Record(CommKind::kReduceScatter, in.nbytes());
  LRKV_TRY(Check(MPI_Reduce_scatter_block(host_in.raw(), host_out.raw(), static_cast<int>(out.numel()), type,
                                          MpiOp(in, ReduceOp::kSum), comm_),
                 "MPI_Reduce_scatter_block"));
  return Unstage(host_out, out);
}

absl::Status MpiCommunicator::Broadcast(Tensor& t, int root) {
  LRKV_TRY_ASSIGN(MPI_Datatype type, MpiType(t));
  LRKV_TRY_ASSIGN(Tensor host, Staged(t));
  Record(CommKind::kBroadcast, t.nbytes());
  LRKV_TRY(Check(MPI_Bcast(host.raw(), static_cast<int>(t.numel()), type, root, comm_), "MPI_Bcast"));
  return Unstage(host, t);
}

absl::Status MpiCommunicator::Send(const Tensor& t, int peer) {
  LRKV_TRY_ASSIGN(MPI_Datatype type, MpiType(t));
  LRKV_TRY_ASSIGN(const Tensor host, Staged(t));
  Record(CommKind::kSendRecv, t.nbytes());
  return Check(MPI_Send(host.raw(), static_cast<int>(t.numel()), type, peer, 0, comm_), "MPI_Send");
}

absl::Status MpiCommunicator::Recv(Tensor& t, int peer) {
  LRKV_TRY_ASSIGN(MPI_Datatype type, MpiType(t));
  LRKV_TRY_ASSIGN(const Tensor host, HostBuffer(t));
  MPI_Status status;
  LRKV_TRY(Check(MPI_Recv(host.raw(), static_cast<int>(t.numel()), type, peer, 0, comm_, &status), "MPI_Recv"));
  int count = 0;
  MPI_Get_count(&status, type, &count);
  LRKV_REQUIRE(count == t.numel(), "Recv on the ", name(), " group: expected ", t.numel(), " elements from rank ",
               peer, ", got ", count);
  return Unstage(host, t);
}

absl::Status MpiCommunicator::SendAsync(const Tensor& t, int peer) {
  LRKV_TRY_ASSIGN(MPI_Datatype type, MpiType(t));
  LRKV_TRY_ASSIGN(Tensor host, Staged(t));
  Record(CommKind::kSendRecv, t.nbytes());
  PendingSend send{MPI_REQUEST_NULL, std::move(host)};
  LRKV_TRY(Check(MPI_Isend(send.tensor.raw(), static_cast<int>(t.numel()), type, peer, 0, comm_, &send.request),
                 "MPI_Isend"));
  pending_.push_back(std::move(send));
  return absl::OkStatus();
}

absl::Status MpiCommunicator::WaitSends() {
  std::vector<MPI_Request> requests;
  for (const PendingSend& s : pending_) requests.push_back(s.request);
  const int error = MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
  pending_.clear();
  return Check(error, "MPI_Waitall");
}

absl::Status MpiCommunicator::Barrier() { return Check(MPI_Barrier(comm_), "MPI_Barrier"); }

absl::StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Split(int color, int key, std::string name) const {
  MPI_Comm sub;
  LRKV_TRY(Check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split"));
  if (sub == MPI_COMM_NULL) return std::unique_ptr<MpiCommunicator>();
  return std::make_unique<MpiCommunicator>(sub, std::move(name));
}

}  // namespace lrkv
