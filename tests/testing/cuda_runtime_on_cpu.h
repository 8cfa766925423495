// The CUDA runtime calls of the CUDA backend's host code (runtime/cuda/device.cc: the device, its
// stream, events, the caching allocator's memory, copies and memsets) carried out on the CPU. A test
// executable linked with cuda_runtime_on_cpu.cc gets these definitions instead of libcudart's (an
// executable's symbols come before a shared library's), so that code runs without a GPU, with
// NCCL's calls on the CPU beside it (nccl_on_cpu.h). No kernel can run: nothing here launches one.
//
// What it keeps of CUDA's semantics: a node's devices (1 unless set), of which cudaSetDevice picks
// one; device memory is host memory, handed out up to
// a capacity (cudaMalloc fails with cudaErrorMemoryAllocation past it, cudaMemGetInfo reports what
// is left); a stream is a thread that runs its work in the order it was enqueued, so a copy or an
// NCCL call returns before it has happened; an event is done once its stream has run everything
// enqueued before it; cudaStreamSynchronize waits for that; cudaGetLastError returns and clears the
// calling thread's last error.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>

namespace lrkv::testing::cuda_runtime_on_cpu {

// Runs `work` on `stream` (nullptr: the default stream) after everything enqueued there before.
void Enqueue(cudaStream_t stream, std::function<void()> work);

// The GPUs this node has (cudaGetDeviceCount), and the one cudaSetDevice chose.
void SetDeviceCount(int count);
int CurrentDevice();

// The device's memory: cudaMalloc fails once `bytes` are handed out (default 1 GiB).
void SetCapacity(size_t bytes);

struct MemoryCounts {
  size_t in_use = 0;  // bytes handed out by cudaMalloc and not yet freed
  int mallocs = 0, frees = 0, failed_mallocs = 0;
};
MemoryCounts GetMemoryCounts();

}  // namespace lrkv::testing::cuda_runtime_on_cpu
