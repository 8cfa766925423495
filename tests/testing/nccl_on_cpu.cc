// NCCL on the CPU over MPI (nccl_on_cpu.h says what it keeps of NCCL's semantics). A call becomes an
// Op: MPI requests it posts and what it does once they are complete (a reduction, a copy out of a
// scratch buffer). Ops run as one stream task per call, or per ncclGroupStart/End.
#include "tests/testing/nccl_on_cpu.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/dtype.h"
#include "tests/testing/cuda_runtime_on_cpu.h"

struct ncclComm {
  MPI_Comm mpi = MPI_COMM_NULL;
  int rank = 0, size = 1;
  std::atomic<bool> aborted{false};
  std::atomic<bool> fail_next{false};
  std::atomic<int> state{ncclSuccess};  // ncclResult_t: what ncclCommGetAsyncError reports
  std::atomic<int> pending{0};          // ops enqueued and not yet finished or abandoned
  std::atomic<bool> finalizing{false};
  std::string last_error;
};

namespace lrkv::testing::nccl_on_cpu {
namespace {

constexpr int kTag = 7;  // point-to-point messages; MPI keeps their order per (peer, communicator)

struct Op {
  ncclComm* comm;
  std::function<void(std::vector<MPI_Request>&)> post;
  std::function<void()> finish;
};

thread_local int group_depth = 0;
thread_local std::vector<std::pair<cudaStream_t, Op>> grouped;

size_t ElementBytes(ncclDataType_t t) {
  switch (t) {
    case ncclFloat64:
      return 8;
    case ncclBfloat16:
      return 2;
    default:
      return 4;  // ncclFloat32, ncclInt32: what the communicator passes
  }
}

bool Supported(ncclDataType_t t) { return t == ncclFloat32 || t == ncclFloat64 || t == ncclBfloat16 || t == ncclInt32; }

// out[i] = op over the `ranks` arrays of `count` elements in `in` (rank r's at r * count), in rank
// order; bf16 added in fp32 and rounded once.
void Reduce(const char* in, int ranks, size_t count, ncclDataType_t type, ncclRedOp_t op, char* out) {
  for (size_t i = 0; i < count; ++i) {
    double acc = 0;
    for (int r = 0; r < ranks; ++r) {
      const char* p = in + (size_t(r) * count + i) * ElementBytes(type);
      double x = 0;
      if (type == ncclFloat32) x = *reinterpret_cast<const float*>(p);
      if (type == ncclFloat64) x = *reinterpret_cast<const double*>(p);
      if (type == ncclInt32) x = *reinterpret_cast<const int32_t*>(p);
      if (type == ncclBfloat16) x = BF16BitsToFloat(*reinterpret_cast<const uint16_t*>(p));
      if (r == 0) {
        acc = x;
      } else if (op == ncclMax) {
        acc = std::max(acc, x);
      } else if (type == ncclFloat32 || type == ncclBfloat16) {
        acc = static_cast<float>(acc + x);  // fp32 accumulation, as NCCL's kernels
      } else {
        acc += x;
      }
    }
    char* q = out + i * ElementBytes(type);
    if (type == ncclFloat32) *reinterpret_cast<float*>(q) = static_cast<float>(acc);
    if (type == ncclFloat64) *reinterpret_cast<double*>(q) = acc;
    if (type == ncclInt32) *reinterpret_cast<int32_t*>(q) = static_cast<int32_t>(acc);
    if (type == ncclBfloat16) *reinterpret_cast<uint16_t*>(q) = FloatToBF16Bits(static_cast<float>(acc));
  }
}

void RunNow(const std::vector<Op>& ops);

// Runs ops on the stream: posts every op's requests, polls them until complete (or a communicator
// is aborted: then the requests are left behind), then finishes each op. A communicator marked to
// fail reports ncclRemoteError and its task waits for the abort, as NCCL's kernel would hang.
void Run(cudaStream_t stream, std::vector<Op> ops) {
  for (const Op& o : ops) ++o.comm->pending;
  cuda_runtime_on_cpu::Enqueue(stream, [ops = std::move(ops)] { RunNow(ops); });
}

// The task itself; the communicators' pending counts fall once it is over, whichever way.
void RunNow(const std::vector<Op>& ops) {
  struct Done {
    const std::vector<Op>& ops;
    ~Done() {
      for (const Op& o : ops) --o.comm->pending;
    }
  } done{ops};
  {
    const auto aborted = [&] {
      return std::any_of(ops.begin(), ops.end(), [](const Op& o) { return o.comm->aborted.load(); });
    };
    for (const Op& o : ops) {
      if (o.comm->fail_next.exchange(false)) {
        o.comm->last_error = "a peer was lost (nccl_on_cpu::FailNextCall)";
        o.comm->state = ncclRemoteError;
        while (!o.comm->aborted) std::this_thread::sleep_for(std::chrono::microseconds(50));
        return;
      }
    }
    std::vector<MPI_Request> requests;
    for (const Op& o : ops) o.post(requests);
    while (true) {
      int done = 0;
      MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
      if (done) break;
      if (aborted()) {  // MPI may still write into the scratch buffers: they are never freed
        (void)new std::vector<Op>(ops);
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    for (const Op& o : ops) o.finish();
  }
}

// An op that gathers `bytes` from every rank into one buffer (rank r's at r * bytes), then gives it
// to `then`: the all-reduce, reduce-scatter and all-gather.
Op GatherThen(ncclComm* comm, const void* send, size_t bytes, std::function<void(const char* all)> then) {
  auto all = std::make_shared<std::vector<char>>(bytes * comm->size);
  return Op{comm,
            [=](std::vector<MPI_Request>& r) {
              r.emplace_back();
              MPI_Iallgather(send, int(bytes), MPI_BYTE, all->data(), int(bytes), MPI_BYTE, comm->mpi, &r.back());
            },
            [=] { then(all->data()); }};
}

ncclResult_t Issue(ncclComm* comm, cudaStream_t stream, Op op) {
  if (comm == nullptr || comm->aborted) return ncclInvalidArgument;
  if (group_depth > 0) {
    grouped.emplace_back(stream, std::move(op));
  } else {
    Run(stream, {std::move(op)});
  }
  return ncclSuccess;
}

// A send or a receive of `count` elements with `peer`: post(bytes, request) posts it.
ncclResult_t PointToPoint(ncclComm* comm, cudaStream_t stream, ncclDataType_t type, size_t count, int peer,
                          std::function<void(int bytes, MPI_Request* request)> post) {
  if (!Supported(type) || comm == nullptr || peer < 0 || peer >= comm->size) return ncclInvalidArgument;
  const int bytes = static_cast<int>(count * ElementBytes(type));
  return Issue(comm, stream,
               Op{comm,
                  [=](std::vector<MPI_Request>& r) {
                    r.emplace_back();
                    post(bytes, &r.back());
                  },
                  [] {}});
}

}  // namespace

void FailNextCall(ncclComm_t comm) { comm->fail_next = true; }

}  // namespace lrkv::testing::nccl_on_cpu

using namespace lrkv::testing::nccl_on_cpu;  // NOLINT: the definitions below are the C API's

extern "C" {

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclInvalidArgument:
      return "invalid argument";
    case ncclInvalidUsage:
      return "invalid usage";
    case ncclRemoteError:
      return "remote process exited or there was a network error";
    case ncclInProgress:
      return "NCCL operation in progress";
    default:
      return "unhandled error";
  }
}

const char* ncclGetLastError(ncclComm_t comm) { return comm == nullptr ? "" : comm->last_error.c_str(); }

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  std::random_device device;
  for (char& c : id->internal) c = static_cast<char>(device());
  return ncclSuccess;
}

// The ranks that share the id are those of MPI_COMM_WORLD (every rank must call).
ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank, ncclConfig_t* config) {
  int threads = MPI_THREAD_SINGLE;
  MPI_Query_thread(&threads);
  if (threads != MPI_THREAD_MULTIPLE) {  // the streams that run the calls are threads that call MPI
    std::fprintf(stderr, "nccl_on_cpu: MPI must be initialised with MPI_THREAD_MULTIPLE\n");
    return ncclSystemError;
  }
  int color = 0;
  std::memcpy(&color, id.internal, sizeof(color));
  color &= 0x7fffffff;
  auto* c = new ncclComm;
  if (MPI_Comm_split(MPI_COMM_WORLD, color, rank, &c->mpi) != MPI_SUCCESS) return ncclSystemError;
  MPI_Comm_rank(c->mpi, &c->rank);
  MPI_Comm_size(c->mpi, &c->size);
  if (c->size != nranks || c->rank != rank) return ncclInvalidArgument;
  if (config != nullptr && config->blocking == 0) c->state = ncclInProgress;  // done in the background
  *comm = c;
  return config != nullptr && config->blocking == 0 ? ncclInProgress : ncclSuccess;
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm, ncclConfig_t* config) {
  if (comm == nullptr || comm->aborted) return ncclInvalidArgument;
  MPI_Comm sub = MPI_COMM_NULL;
  if (MPI_Comm_split(comm->mpi, color == NCCL_SPLIT_NOCOLOR ? MPI_UNDEFINED : color, key, &sub) != MPI_SUCCESS) {
    return ncclSystemError;
  }
  if (sub == MPI_COMM_NULL) {
    *newcomm = nullptr;
  } else {
    auto* c = new ncclComm;
    c->mpi = sub;
    MPI_Comm_rank(sub, &c->rank);
    MPI_Comm_size(sub, &c->size);
    if (config != nullptr && config->blocking == 0) c->state = ncclInProgress;
    *newcomm = c;
  }
  if (config != nullptr && config->blocking == 0) comm->state = ncclInProgress;  // the parent's call too
  return config != nullptr && config->blocking == 0 ? ncclInProgress : ncclSuccess;
}

// After a non-blocking call: in progress once, and for ncclCommFinalize until every op enqueued
// on the communicator is over; then the state.
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* state) {
  if (comm == nullptr) return ncclInvalidArgument;
  int expected = ncclInProgress;
  if ((!comm->finalizing || comm->pending == 0) && comm->state.compare_exchange_strong(expected, ncclSuccess)) {
    *state = ncclInProgress;
  } else {
    *state = static_cast<ncclResult_t>(comm->state.load());
  }
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  *count = comm->size;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (comm == nullptr || comm->aborted) return ncclInvalidArgument;
  comm->finalizing = true;
  comm->state = ncclInProgress;
  return ncclInProgress;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr || comm->aborted) return ncclInvalidArgument;
  if (comm->pending != 0) {  // NCCL requires the work finished (ncclCommFinalize) before this
    std::fprintf(stderr, "nccl_on_cpu: ncclCommDestroy with %d ops not finished\n", comm->pending.load());
    std::abort();
  }
  MPI_Comm_free(&comm->mpi);
  delete comm;
  return ncclSuccess;
}

// The object stays (leaked): an abandoned stream task may still look at it.
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm != nullptr) comm->aborted = true;
  return ncclSuccess;
}

ncclResult_t ncclGroupStart() {
  ++group_depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
  if (group_depth == 0) return ncclInvalidUsage;
  if (--group_depth > 0 || grouped.empty()) return ncclSuccess;
  std::vector<std::pair<cudaStream_t, Op>> calls;
  calls.swap(grouped);  // the group is over whatever happens below
  const cudaStream_t stream = calls.front().first;
  std::vector<Op> ops;
  for (auto& [s, op] : calls) {
    if (s != stream) return ncclInvalidUsage;  // the communicator uses one stream
    ops.push_back(std::move(op));
  }
  Run(stream, std::move(ops));
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  if (!Supported(type) || (op != ncclSum && op != ncclMax)) return ncclInvalidArgument;
  return Issue(comm, stream, GatherThen(comm, send, count * ElementBytes(type), [=](const char* all) {
                 Reduce(all, comm->size, count, type, op, static_cast<char*>(recv));
               }));
}

ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t recvcount, ncclDataType_t type, ncclRedOp_t op,
                               ncclComm_t comm, cudaStream_t stream) {
  if (!Supported(type) || (op != ncclSum && op != ncclMax)) return ncclInvalidArgument;
  const size_t part = recvcount * ElementBytes(type), whole = part * comm->size;
  // Every rank's whole input gathered; this rank's part of each, side by side, then reduced.
  return Issue(comm, stream, GatherThen(comm, send, whole, [=](const char* all) {
                 std::vector<char> mine(part * comm->size);
                 for (int q = 0; q < comm->size; ++q) {
                   std::memcpy(mine.data() + q * part, all + q * whole + comm->rank * part, part);
                 }
                 Reduce(mine.data(), comm->size, recvcount, type, op, static_cast<char*>(recv));
               }));
}

ncclResult_t ncclAllGather(const void* send, void* recv, size_t sendcount, ncclDataType_t type, ncclComm_t comm,
                           cudaStream_t stream) {
  if (!Supported(type)) return ncclInvalidArgument;
  const size_t bytes = sendcount * ElementBytes(type);
  return Issue(comm, stream,
               GatherThen(comm, send, bytes, [=](const char* all) { std::memcpy(recv, all, bytes * comm->size); }));
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  if (!Supported(type) || root < 0 || root >= comm->size) return ncclInvalidArgument;
  const size_t bytes = count * ElementBytes(type);
  auto buffer = std::make_shared<std::vector<char>>(bytes);
  return Issue(comm, stream,
               Op{comm,
                  [=](std::vector<MPI_Request>& r) {
                    if (comm->rank == root) std::memcpy(buffer->data(), send, bytes);
                    r.emplace_back();
                    MPI_Ibcast(buffer->data(), int(bytes), MPI_BYTE, root, comm->mpi, &r.back());
                  },
                  [=] { std::memcpy(recv, buffer->data(), bytes); }});
}

ncclResult_t ncclSend(const void* send, size_t count, ncclDataType_t type, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return PointToPoint(comm, stream, type, count, peer,
                      [=](int bytes, MPI_Request* r) { MPI_Isend(send, bytes, MPI_BYTE, peer, kTag, comm->mpi, r); });
}

ncclResult_t ncclRecv(void* recv, size_t count, ncclDataType_t type, int peer, ncclComm_t comm, cudaStream_t stream) {
  return PointToPoint(comm, stream, type, count, peer,
                      [=](int bytes, MPI_Request* r) { MPI_Irecv(recv, bytes, MPI_BYTE, peer, kTag, comm->mpi, r); });
}

}  // extern "C"
