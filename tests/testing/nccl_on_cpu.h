// NCCL's calls as parallel/nccl_communicator.cc makes them, carried out on the CPU between MPI
// processes, for tests/parallel/cuda_host_on_cpu_test.cc: a test executable linked with nccl_on_cpu.cc
// (and cuda_runtime_on_cpu.cc, whose streams run the work) gets these definitions instead of
// libnccl's, so the NCCL communicator and a CUDA mesh run under mpirun without GPUs.
//
// What it keeps of NCCL's semantics: a communicator per group of ranks, made from a unique id or
// split from another by color and key (NCCL_SPLIT_NOCOLOR: none); non-blocking communicators
// (ncclInProgress from ncclCommGetAsyncError until the background work is done); each collective
// and point-to-point call enqueued on the given stream and run there in order, so it returns
// before it has happened; the counts as NCCL defines them (AllGather's per rank send count,
// ReduceScatter's per rank receive count); ncclGroupStart/End issuing the calls between them
// together (two ranks that each send and then receive in one group do not wait on each other);
// a call whose peer never makes its own stays unfinished until the communicator is aborted.
// Data moves over MPI's non-blocking calls (the process needs MPI_THREAD_MULTIPLE: streams are
// threads); a communicator made from a unique id needs every rank of MPI_COMM_WORLD to make one.
#pragma once

#include <nccl.h>

namespace lrkv::testing::nccl_on_cpu {

// The communicator's next call fails as one with a lost peer does: its work never finishes and
// ncclCommGetAsyncError reports ncclRemoteError, until the communicator is aborted.
void FailNextCall(ncclComm_t comm);

}  // namespace lrkv::testing::nccl_on_cpu
