// The CUDA backend's process state: the device, the one stream every op and copy of this process is
// enqueued on, and the caching allocator registered for Device::kCuda. Nothing here touches the
// driver before the first call, so binaries built with CUDA start (and skip CUDA work) on machines
// without a GPU.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lrkv::cuda {

// Number of CUDA devices; 0 when the driver or the devices are missing (never an error).
int DeviceCount();

// Selects the device this process uses (default 0); only before the first CUDA tensor is made.
absl::Status SelectDevice(int device);

// Sets the device, creates the stream and registers the caching allocator for Device::kCuda.
// FailedPrecondition when there is no CUDA device. Idempotent and thread-safe.
absl::Status EnsureInitialized();

// Bytes free on this process's device now, and its total (cudaMemGetInfo; initialises the backend).
struct MemoryInfo {
  int64_t free_bytes = 0, total_bytes = 0;
};
absl::StatusOr<MemoryInfo> DeviceMemory();

// The stream of every op and copy of this process (valid after EnsureInitialized).
cudaStream_t CurrentStream();
// Waits for everything enqueued on CurrentStream().
absl::Status Synchronize();

// A CUDA stream, destroyed with the object.
class Stream {
 public:
  static absl::StatusOr<Stream> Create(bool non_blocking = true);
  Stream() = default;
  Stream(Stream&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stream& operator=(Stream&& o) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();
  cudaStream_t get() const { return s_; }
  absl::Status Synchronize() const;

 private:
  cudaStream_t s_ = nullptr;
};

// A CUDA event (timing disabled unless asked), destroyed with the object.
class Event {
 public:
  static absl::StatusOr<Event> Create(bool timing = false);
  Event() = default;
  Event(Event&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  Event& operator=(Event&& o) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event();
  cudaEvent_t get() const { return e_; }
  absl::Status Record(cudaStream_t stream) const;
  // True once the work recorded before the event is done; an error status for a device fault.
  absl::StatusOr<bool> Done() const;
  absl::Status Wait(cudaStream_t stream) const;  // makes `stream` wait for the event
  // Milliseconds between `start` and this event (both recorded with timing).
  absl::StatusOr<float> ElapsedMsSince(const Event& start) const;

 private:
  cudaEvent_t e_ = nullptr;
};


}  // namespace lrkv::cuda
