#include "runtime/allocator.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#ifdef LRKV_HAVE_CUDA
#include "runtime/cuda/device.h"
#endif

namespace lrkv {
namespace {

// Host memory, 64-byte aligned for vector loads and BLAS, with a cache of freed blocks by size.
// A training step allocates the same activation sizes every time; without the cache each large
// block would come fresh from mmap and pay a page fault per 4 KiB on first touch, every step.
// A block is the size asked for rounded up to its size class: 64 bytes, or from 4 KiB on 1/64 of
// the size's power of two (at most 1.6% slack, left untouched, so not resident). Sizes that grow by
// a little every call (decoding: the keys rebuilt for a context one longer every token) then reuse
// one block for many calls instead of faulting a fresh one in each time (a 16k-token LRKV step
// spent a quarter of its time zeroing new pages). Sizes that never repeat would still fill the
// cache without end, so a miss while the cache holds more than is in use empties it.
class CpuAllocator final : public Allocator {
 public:
  absl::StatusOr<void*> Allocate(size_t bytes) override {
    const size_t asked = bytes == 0 ? 64 : ((bytes + 63) / 64) * 64, block = SizeClass(asked);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(block);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        Track(p, asked, block, /*from_cache=*/true);
        return p;
      }
      if (stats_.cached > stats_.in_use) ReleaseLocked();
    }
    void* p = std::aligned_alloc(64, block);
    if (p == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("host allocation of ", bytes, " bytes failed"));
    }
    std::lock_guard<std::mutex> lock(mu_);
    Track(p, asked, block, /*from_cache=*/false);
    return p;
  }
  void Free(void* ptr) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sizes_.find(ptr);
    free_.emplace(it->second.block, ptr);
    stats_.Freed(it->second.asked, it->second.block);
    sizes_.erase(it);
  }
  AllocatorStats Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void ResetPeaks() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.ResetPeaks();
  }
  absl::Status ReleaseCached() override {
    std::lock_guard<std::mutex> lock(mu_);
    ReleaseLocked();
    return absl::OkStatus();
  }
  absl::Status Memset0(void* ptr, size_t bytes) override {
    std::memset(ptr, 0, bytes);
    return absl::OkStatus();
  }
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return absl::OkStatus();
  }
  absl::Status CopyFromHost(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return absl::OkStatus();
  }
  absl::Status CopyWithinDevice(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return absl::OkStatus();
  }

 private:
  void ReleaseLocked() {
    for (const auto& [size, block] : free_) std::free(block);
    free_.clear();
    stats_.Emptied();
  }
  static size_t SizeClass(size_t asked) {
    if (asked < 4096) return asked;
    size_t step = 64;
    while (step * 128 <= asked) step *= 2;  // step = the size's power of two / 64
    return (asked + step - 1) / step * step;
  }
  void Track(void* p, size_t asked, size_t block, bool from_cache) {
    sizes_[p] = {asked, block};
    stats_.Handed(int64_t(asked), int64_t(block), from_cache);
  }
  struct Sizes {
    size_t asked, block;
  };
  std::mutex mu_;
  std::unordered_map<void*, Sizes> sizes_;  // live blocks
  std::multimap<size_t, void*> free_;        // cached blocks by size
  AllocatorStats stats_;
};

// The emulated device's memory is the host's, in an allocator of its own, so that its figures are
// the device's alone, as a GPU's would be.
CpuAllocator cpu_allocator, emulated_allocator;
// Registration may race with lookups from other threads (the CUDA allocator registers lazily).
std::atomic<Allocator*> registry[kDeviceKinds] = {&cpu_allocator, nullptr, &emulated_allocator};

}  // namespace

void RegisterAllocator(Device device, Allocator* allocator) {
  registry[static_cast<int>(device)].store(allocator, std::memory_order_release);
}

absl::StatusOr<Allocator*> AllocatorFor(Device device) {
#ifdef LRKV_HAVE_CUDA
  if (device == Device::kCuda && registry[static_cast<int>(device)].load(std::memory_order_acquire) == nullptr) {
    const absl::Status s = cuda::EnsureInitialized();  // registers the CUDA allocator
    if (!s.ok()) return s;
  }
#endif
  Allocator* a = registry[static_cast<int>(device)].load(std::memory_order_acquire);
  if (a == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no ", DeviceName(device), " backend in this build or on this machine"));
  }
  return a;
}

}  // namespace lrkv
