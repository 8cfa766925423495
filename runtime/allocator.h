// Device memory. Each device backend registers one allocator; tensors hold their memory through a
// reference-counted Storage that returns it to that allocator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/dtype.h"

namespace lrkv {

// What an allocator holds, in bytes: handed out and not yet freed (in use), freed but kept for
// reuse (cached), and the peaks since the last ResetPeaks. held = in use + cached is what the
// process owns of the device; the memory model (model/memory_model.h) is checked against it.
struct AllocatorStats {
  int64_t in_use = 0, cached = 0, peak_in_use = 0, peak_held = 0, device_mallocs = 0;
  // The bookkeeping every backend's allocator does, under its own lock: a block handed out (from
  // its cache or fresh from the device), a block freed into the cache, the cache emptied.
  void Handed(int64_t bytes, bool from_cache) {
    if (from_cache) cached -= bytes;
    else ++device_mallocs;
    in_use += bytes;
    peak_in_use = in_use > peak_in_use ? in_use : peak_in_use;
    peak_held = in_use + cached > peak_held ? in_use + cached : peak_held;
  }
  void Freed(int64_t bytes) { in_use -= bytes, cached += bytes; }
  void Emptied() { cached = 0; }
  void ResetPeaks() { peak_in_use = in_use, peak_held = in_use + cached; }
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual AllocatorStats Stats() = 0;
  // Starts the peaks again from what is in use and held now.
  virtual void ResetPeaks() = 0;
  // Returns every cached block to the system (the cache keeps blocks by exact size, so one-off
  // buffers, such as start-up's staging, would otherwise stay held for good).
  virtual absl::Status ReleaseCached() = 0;
  virtual absl::StatusOr<void*> Allocate(size_t bytes) = 0;
  virtual void Free(void* ptr) = 0;
  virtual absl::Status Memset0(void* ptr, size_t bytes) = 0;
  // Copies between this device and the host (or within this device).
  virtual absl::Status CopyToHost(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyFromHost(void* dst, const void* src, size_t bytes) = 0;
  // Both pointers on this device.
  virtual absl::Status CopyWithinDevice(void* dst, const void* src, size_t bytes) = 0;
};

// The allocator for `device`, or FailedPrecondition when this build or machine has none. The CUDA
// backend initialises itself (runtime/cuda/device.h) on the first request for Device::kCuda.
absl::StatusOr<Allocator*> AllocatorFor(Device device);
// Backends register themselves once at start-up (the CUDA backend does so when a GPU is present).
void RegisterAllocator(Device device, Allocator* allocator);

struct Storage {
  Storage(void* p, size_t n, Device d, Allocator* a) : ptr(p), bytes(n), device(d), allocator(a) {}
  ~Storage() { allocator->Free(ptr); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr;
  size_t bytes;
  Device device;
  Allocator* allocator;
};

}  // namespace lrkv
