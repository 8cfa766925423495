// The CUDA runtime on the CPU (cuda_runtime_on_cpu.h says what it keeps of CUDA's semantics).
#include "tests/testing/cuda_runtime_on_cpu.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

// A stream: a thread running the work enqueued on it, in order. Never destroyed (cudaStreamDestroy
// below), so its thread runs for the life of the process.
struct CUstream_st {
  CUstream_st() { std::thread([this] { Run(); }).detach(); }
  // The ticket of the work: the stream has run it once finished >= ticket.
  uint64_t Push(std::function<void()> work) {
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(std::move(work));
    cv.notify_all();
    return ++queued;
  }
  uint64_t Queued() {
    std::lock_guard<std::mutex> lock(mu);
    return queued;
  }
  bool Reached(uint64_t ticket) {
    std::lock_guard<std::mutex> lock(mu);
    return finished >= ticket;
  }
  void WaitFor(uint64_t ticket) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return finished >= ticket; });
  }

 private:
  void Run() {
    while (true) {
      std::function<void()> work;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !queue.empty(); });
        work = std::move(queue.front());
        queue.pop_front();
      }
      work();
      {
        std::lock_guard<std::mutex> lock(mu);
        ++finished;
      }
      cv.notify_all();
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  uint64_t queued = 0, finished = 0;
};

// An event: the point of its stream's queue where it was last recorded, and when the stream got
// there. Each record has its own state, shared with the work that stamps it, so that an event
// destroyed (or recorded again) while that work is still queued is not written after it is gone,
// as CUDA allows.
struct EventRecord {
  CUstream_st* stream = nullptr;
  uint64_t ticket = 0;
  std::chrono::steady_clock::time_point at;
};
struct CUevent_st {
  std::shared_ptr<EventRecord> record;  // null until recorded: a never-recorded event is done
  bool timing = true;
};

namespace lrkv::testing::cuda_runtime_on_cpu {
namespace {

std::mutex mu;
std::atomic<int> device_count{1}, current_device{0};
size_t capacity = size_t(1) << 30;
std::map<void*, size_t> blocks;
MemoryCounts counts;
thread_local cudaError_t last_error = cudaSuccess;

CUstream_st* Resolve(cudaStream_t s) {
  static CUstream_st* default_stream = new CUstream_st;  // leaked: work may outlive static teardown
  return s == nullptr ? default_stream : s;
}

cudaError_t Error(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

}  // namespace

void Enqueue(cudaStream_t stream, std::function<void()> work) { Resolve(stream)->Push(std::move(work)); }

void SetDeviceCount(int count) { device_count = count; }
int CurrentDevice() { return current_device; }

void SetCapacity(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu);
  capacity = bytes;
}

MemoryCounts GetMemoryCounts() {
  std::lock_guard<std::mutex> lock(mu);
  return counts;
}

}  // namespace lrkv::testing::cuda_runtime_on_cpu

using namespace lrkv::testing::cuda_runtime_on_cpu;  // NOLINT: the definitions below are the C API's

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = device_count;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= device_count) return Error(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) { return std::exchange(last_error, cudaSuccess); }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    default:
      return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "out of memory (the CPU's CUDA runtime's capacity)" : cudaGetErrorName(e);
}

cudaError_t cudaMalloc(void** ptr, size_t size) {
  std::lock_guard<std::mutex> lock(mu);
  if (ptr == nullptr) return Error(cudaErrorInvalidValue);
  if (counts.in_use + size > capacity) {
    ++counts.failed_mallocs;
    *ptr = nullptr;
    return Error(cudaErrorMemoryAllocation);
  }
  *ptr = std::aligned_alloc(256, (size + 255) / 256 * 256);  // cudaMalloc's alignment
  blocks[*ptr] = size;
  counts.in_use += size;
  ++counts.mallocs;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  std::lock_guard<std::mutex> lock(mu);
  if (ptr == nullptr) return cudaSuccess;
  auto it = blocks.find(ptr);
  if (it == blocks.end()) return Error(cudaErrorInvalidValue);
  counts.in_use -= it->second;
  ++counts.frees;
  blocks.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  std::lock_guard<std::mutex> lock(mu);
  *total = capacity;
  *free_bytes = capacity > counts.in_use ? capacity - counts.in_use : 0;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int /*flags*/) {
  *stream = new CUstream_st;
  return cudaSuccess;
}

// CUDA returns at once and lets the queued work finish; here the stream's thread runs it and then
// idles, and the stream is never freed: events recorded on it may still be queried.
cudaError_t cudaStreamDestroy(cudaStream_t /*stream*/) { return cudaSuccess; }

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  CUstream_st* s = Resolve(stream);
  s->WaitFor(s->Queued());
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind /*kind*/, cudaStream_t stream) {
  Resolve(stream)->Push([=] { std::memcpy(dst, src, count); });
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
  Resolve(stream)->Push([=] { std::memset(ptr, value, count); });
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  *event = new CUevent_st;
  (*event)->timing = (flags & cudaEventDisableTiming) == 0;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  auto record = std::make_shared<EventRecord>();
  record->stream = Resolve(stream);
  record->ticket = record->stream->Push([record] { record->at = std::chrono::steady_clock::now(); });
  event->record = record;
  return cudaSuccess;
}

// Not ready is returned, not kept as the last error (CUDA's cudaEventQuery does the same).
cudaError_t cudaEventQuery(cudaEvent_t event) {
  const std::shared_ptr<EventRecord>& r = event->record;
  return r == nullptr || r->stream->Reached(r->ticket) ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start->timing || !end->timing || start->record == nullptr || end->record == nullptr) {
    return Error(cudaErrorInvalidResourceHandle);
  }
  if (cudaEventQuery(start) != cudaSuccess || cudaEventQuery(end) != cudaSuccess) return cudaErrorNotReady;
  *ms = std::chrono::duration<float, std::milli>(end->record->at - start->record->at).count();
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int /*flags*/) {
  if (event->record == nullptr) return cudaSuccess;
  const std::shared_ptr<EventRecord> waited = event->record;
  Resolve(stream)->Push([waited] { waited->stream->WaitFor(waited->ticket); });
  return cudaSuccess;
}

}  // extern "C"
