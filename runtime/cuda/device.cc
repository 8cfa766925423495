#include "runtime/cuda/device.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "runtime/allocator.h"
#include "runtime/cuda/check.h"
#include "runtime/status.h"

namespace lrkv::cuda {
namespace {

// Block sizes are rounded so that the activation shapes of consecutive steps hit the cache: to 512
// bytes below 1 MiB, to 2 MiB above. A freed block is reused for a request of the same rounded
// size; frees need no synchronisation because every op runs on the one stream, in order (a block
// freed by the host is reused only by work enqueued after the work that used it).
size_t RoundSize(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20, kSmallLimit = size_t(1) << 20;
  if (bytes == 0) return kSmall;
  if (bytes <= kSmallLimit) return (bytes + kSmall - 1) / kSmall * kSmall;
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

class CachingAllocator final : public Allocator {
 public:
  absl::StatusOr<void*> Allocate(size_t bytes) override {
    const size_t rounded = RoundSize(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(rounded);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        Track(p, rounded, /*from_cache=*/true);
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, rounded);
    if (e == cudaErrorMemoryAllocation) {  // give the cache back and try once more
      cudaGetLastError();
      LRKV_TRY(ReleaseCached());
      e = cudaMalloc(&p, rounded);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      return CallStatus(e, absl::StrCat("cudaMalloc(", rounded, " bytes)").c_str(), __FILE__, __LINE__);
    }
    std::lock_guard<std::mutex> lock(mu_);
    Track(p, rounded, /*from_cache=*/false);
    return p;
  }

  void Free(void* ptr) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sizes_.find(ptr);
    if (it == sizes_.end()) return;
    stats_.Freed(int64_t(it->second), int64_t(it->second));
    free_.emplace(it->second, ptr);
    sizes_.erase(it);
  }

  absl::Status Memset0(void* ptr, size_t bytes) override {
    if (bytes == 0) return absl::OkStatus();
    LRKV_CUDA_TRY(cudaMemsetAsync(ptr, 0, bytes, CurrentStream()));
    return absl::OkStatus();
  }
  absl::Status CopyToHost(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return absl::OkStatus();
    LRKV_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, CurrentStream()));
    LRKV_CUDA_TRY(cudaStreamSynchronize(CurrentStream()));
    return absl::OkStatus();
  }
  absl::Status CopyFromHost(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return absl::OkStatus();
    LRKV_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, CurrentStream()));
    // The host buffer may be freed as soon as we return.
    LRKV_CUDA_TRY(cudaStreamSynchronize(CurrentStream()));
    return absl::OkStatus();
  }
  absl::Status CopyWithinDevice(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return absl::OkStatus();
    LRKV_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, CurrentStream()));
    return absl::OkStatus();
  }

  absl::Status ReleaseCached() override {
    std::multimap<size_t, void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      blocks.swap(free_);
      stats_.Emptied();
    }
    if (blocks.empty()) return absl::OkStatus();
    LRKV_CUDA_TRY(cudaStreamSynchronize(CurrentStream()));
    for (const auto& [size, p] : blocks) LRKV_CUDA_TRY(cudaFree(p));
    return absl::OkStatus();
  }

  AllocatorStats Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void ResetPeaks() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.ResetPeaks();
  }

 private:
  void Track(void* p, size_t rounded, bool from_cache) {
    sizes_[p] = rounded;
    stats_.Handed(int64_t(rounded), int64_t(rounded), from_cache);
  }
  std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;  // live blocks
  std::multimap<size_t, void*> free_;        // cached blocks by rounded size
  AllocatorStats stats_;
};

struct State {
  std::mutex mu;
  bool initialized = false;
  int device = 0;
  cudaStream_t stream = nullptr;
  CachingAllocator* allocator = nullptr;  // leaked on purpose: tensors may outlive static destruction
};
State& GetState() {
  static State* state = new State;
  return *state;
}

}  // namespace

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

absl::Status SelectDevice(int device) {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  LRKV_REQUIRE(!s.initialized || s.device == device, "SelectDevice(", device, "): the CUDA backend already runs on device ",
               s.device);
  s.device = device;
  return absl::OkStatus();
}

absl::Status EnsureInitialized() {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.initialized) return absl::OkStatus();
  const int count = DeviceCount();
  if (count == 0) return absl::FailedPreconditionError("no CUDA device on this machine (cudaGetDeviceCount)");
  LRKV_REQUIRE(s.device >= 0 && s.device < count, "CUDA device ", s.device, " requested, ", count, " present");
  LRKV_CUDA_TRY(cudaSetDevice(s.device));
  LRKV_CUDA_TRY(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  s.allocator = new CachingAllocator;
  RegisterAllocator(Device::kCuda, s.allocator);
  s.initialized = true;
  return absl::OkStatus();
}

absl::StatusOr<MemoryInfo> DeviceMemory() {
  LRKV_TRY(EnsureInitialized());
  size_t free = 0, total = 0;
  LRKV_CUDA_TRY(cudaMemGetInfo(&free, &total));
  return MemoryInfo{static_cast<int64_t>(free), static_cast<int64_t>(total)};
}

cudaStream_t CurrentStream() { return GetState().stream; }

absl::Status Synchronize() {
  LRKV_CUDA_TRY(cudaStreamSynchronize(CurrentStream()));
  return absl::OkStatus();
}

absl::StatusOr<Stream> Stream::Create(bool non_blocking) {
  Stream s;
  LRKV_CUDA_TRY(cudaStreamCreateWithFlags(&s.s_, non_blocking ? cudaStreamNonBlocking : cudaStreamDefault));
  return s;
}
Stream& Stream::operator=(Stream&& o) noexcept {
  std::swap(s_, o.s_);
  return *this;
}
Stream::~Stream() {
  if (s_ != nullptr) cudaStreamDestroy(s_);
}
absl::Status Stream::Synchronize() const {
  LRKV_CUDA_TRY(cudaStreamSynchronize(s_));
  return absl::OkStatus();
}

absl::StatusOr<Event> Event::Create(bool timing) {
  Event e;
  LRKV_CUDA_TRY(cudaEventCreateWithFlags(&e.e_, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}
Event& Event::operator=(Event&& o) noexcept {
  std::swap(e_, o.e_);
  return *this;
}
Event::~Event() {
  if (e_ != nullptr) cudaEventDestroy(e_);
}
absl::Status Event::Record(cudaStream_t stream) const {
  LRKV_CUDA_TRY(cudaEventRecord(e_, stream));
  return absl::OkStatus();
}
absl::StatusOr<bool> Event::Done() const {
  const cudaError_t e = cudaEventQuery(e_);
  if (e == cudaSuccess) return true;
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  LRKV_CUDA_TRY(e);
  return false;
}
absl::Status Event::Wait(cudaStream_t stream) const {
  LRKV_CUDA_TRY(cudaStreamWaitEvent(stream, e_, 0));
  return absl::OkStatus();
}
absl::StatusOr<float> Event::ElapsedMsSince(const Event& start) const {
  float ms = 0;
  LRKV_CUDA_TRY(cudaEventElapsedTime(&ms, start.e_, e_));
  return ms;
}

}  // namespace lrkv::cuda
