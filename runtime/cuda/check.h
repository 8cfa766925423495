// One macro checks every CUDA runtime, cuBLASLt and NCCL call: LRKV_CUDA_TRY(call) returns an
// absl::Status naming the call, its error string, and the source line from the enclosing function
// when the call fails. Overloads of CallStatus exist for cudaError_t and cublasStatus_t here, and for
// ncclResult_t in parallel/nccl_communicator.cc (the runtime does not link NCCL).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "absl/status/status.h"

namespace lrkv::cuda {

absl::Status CallStatus(cudaError_t result, const char* call, const char* file, int line);
absl::Status CallStatus(cublasStatus_t result, const char* call, const char* file, int line);

}  // namespace lrkv::cuda

#define LRKV_CUDA_TRY(call)                                                                        \
  do {                                                                                             \
    const ::absl::Status lrkv_cuda_status_ = ::lrkv::cuda::CallStatus((call), #call, __FILE__, __LINE__); \
    if (!lrkv_cuda_status_.ok()) return lrkv_cuda_status_;                                         \
  } while (0)

// After a kernel launch: launch-configuration errors (and earlier asynchronous faults).
#define LRKV_CUDA_TRY_LAUNCH() LRKV_CUDA_TRY(cudaGetLastError())
