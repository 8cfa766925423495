#include "launch/train/training_device.h"

#include "absl/strings/str_cat.h"
#include "runtime/status.h"
#ifdef LRKV_HAVE_CUDA
#include "runtime/cuda/device.h"
#endif

namespace lrkv {

absl::Status PrepareTrainingDevice(Device device, MPI_Comm world) {
  if (device != Device::kCuda) return absl::OkStatus();  // the same on every rank: one config
#ifdef LRKV_HAVE_CUDA
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_rank = 0, local_ranks = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  const int gpus = cuda::DeviceCount();
  LRKV_REQUIRE_CODE(absl::StatusCode::kFailedPrecondition, gpus > 0,
                    "train.device=CUDA: this machine has no CUDA device (cudaGetDeviceCount found none)");
  LRKV_REQUIRE_CODE(absl::StatusCode::kFailedPrecondition, local_ranks <= gpus, "train.device=CUDA: ", local_ranks,
                    " ranks on this node but it has ", gpus, " GPU(s); train on CUDA with one rank per GPU");
  LRKV_TRY(cuda::SelectDevice(local_rank));
  return cuda::EnsureInitialized();
#else
  (void)world;
  return absl::FailedPreconditionError(
      "train.device=CUDA: this build has no CUDA backend (configure it where nvcc and the CUDA toolkit are found)");
#endif
}

absl::StatusOr<int64_t> FreeDeviceMemoryBytes(Device device) {
#ifdef LRKV_HAVE_CUDA
  if (device == Device::kCuda) {
    LRKV_TRY_ASSIGN(const cuda::MemoryInfo info, cuda::DeviceMemory());
    return info.free_bytes;
  }
#endif
  return absl::FailedPreconditionError(absl::StrCat("no free-memory query for a ", DeviceName(device), " device"));
}

absl::Status WaitForDevice(Device device) {
#ifdef LRKV_HAVE_CUDA
  if (device == Device::kCuda) return cuda::Synchronize();
#endif
  (void)device;
  return absl::OkStatus();
}

}  // namespace lrkv
