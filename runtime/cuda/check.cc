#include "runtime/cuda/check.h"

#include "absl/strings/str_cat.h"

namespace lrkv::cuda {

absl::Status CallStatus(cudaError_t result, const char* call, const char* file, int line) {
  if (result == cudaSuccess) return absl::OkStatus();
  cudaGetLastError();  // clears a non-sticky error so that later calls do not report it again
  const std::string message =
      absl::StrCat(call, " failed at ", file, ":", line, ": ", cudaGetErrorName(result), " (", cudaGetErrorString(result), ")");
  switch (result) {
    case cudaErrorMemoryAllocation: return absl::ResourceExhaustedError(message);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver: return absl::FailedPreconditionError(message);
    case cudaErrorInvalidValue:
    case cudaErrorInvalidConfiguration: return absl::InvalidArgumentError(message);
    default: return absl::InternalError(message);
  }
}

absl::Status CallStatus(cublasStatus_t result, const char* call, const char* file, int line) {
  if (result == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const std::string message = absl::StrCat(call, " failed at ", file, ":", line, ": ", cublasLtGetStatusName(result),
                                           " (", cublasLtGetStatusString(result), ")");
  switch (result) {
    case CUBLAS_STATUS_ALLOC_FAILED: return absl::ResourceExhaustedError(message);
    case CUBLAS_STATUS_NOT_SUPPORTED: return absl::UnimplementedError(message);
    case CUBLAS_STATUS_INVALID_VALUE: return absl::InvalidArgumentError(message);
    default: return absl::InternalError(message);
  }
}

}  // namespace lrkv::cuda
