// Device memory. Each device backend registers one allocator; tensors hold their memory through a
// reference-counted Storage that returns it to that allocator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/dtype.h"

namespace lrkv {

// What an allocator holds, in bytes: handed out and not yet freed (in use: the bytes asked for),
// the rest of the blocks that hold them (slack), freed blocks kept for reuse (cached), and the
// peaks since the last ResetPeaks. held = in use + slack + cached is what the process owns of the
// device; the memory model (model/memory_model.h) is checked against in use and held.
struct AllocatorStats {
  int64_t in_use = 0, slack = 0, cached = 0, peak_in_use = 0, peak_held = 0, device_mallocs = 0;
  int64_t held() const { return in_use + slack + cached; }
  // The bookkeeping every backend's allocator does, under its own lock: `bytes` handed out in a
  // block of `block` bytes (from its cache or fresh from the device), that block freed into the
  // cache, the cache emptied.
  void Handed(int64_t bytes, int64_t block, bool from_cache) {
    if (from_cache) cached -= block;
    else ++device_mallocs;
    in_use += bytes, slack += block - bytes;
    peak_in_use = in_use > peak_in_use ? in_use : peak_in_use;
    peak_held = held() > peak_held ? held() : peak_held;
  }
  void Freed(int64_t bytes, int64_t block) { in_use -= bytes, slack -= block - bytes, cached += block; }
  void Emptied() { cached = 0; }
  void ResetPeaks() { peak_in_use = in_use, peak_held = held(); }
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual AllocatorStats Stats() = 0;
  // Starts the peaks again from what is in use and held now.
  virtual void ResetPeaks() = 0;
  // Returns every cached block to the system (the cache keeps blocks by size class, so one-off
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
