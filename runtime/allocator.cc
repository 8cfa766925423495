#include "runtime/allocator.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lrkv {
namespace {

// Host memory, 64-byte aligned for vector loads and BLAS.
class CpuAllocator final : public Allocator {
 public:
  absl::StatusOr<void*> Allocate(size_t bytes) override {
    const size_t rounded = ((bytes + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (p == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("host allocation of ", bytes, " bytes failed"));
    }
    return p;
  }
  void Free(void* ptr) override { std::free(ptr); }
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
};

CpuAllocator cpu_allocator;
Allocator* registry[2] = {&cpu_allocator, nullptr};

}  // namespace

void RegisterAllocator(Device device, Allocator* allocator) {
  registry[static_cast<int>(device)] = allocator;
}

absl::StatusOr<Allocator*> AllocatorFor(Device device) {
  Allocator* a = registry[static_cast<int>(device)];
  if (a == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no ", DeviceName(device), " backend in this build or on this machine"));
  }
  return a;
}

}  // namespace lrkv
