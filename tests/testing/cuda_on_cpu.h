// CUDA on the CPU, for testing device kernels on a machine without a GPU: enough of CUDA's thread
// model (blocks of threads with __syncthreads, warps of 32 with __syncwarp and __shfl_xor_sync),
// bf16 and WMMA's 16x16x16 tensor-core fragments to run a kernel written against them, such as
// runtime/ops/cuda/flash_attention.cuh, on the CPU. Every CUDA thread is an OS thread; the blocks of a
// launch run one after another. Slow, and only for small shapes, but it runs the kernel's own code:
// its indexing, its synchronisation and its use of shared memory.
//
// It is stricter than a GPU where a GPU would be silently wrong: WMMA loads and stores check the
// alignment rules (256-bit pointers, ldm a multiple of 16 bytes); that the 32 lanes of the warp
// passed the same arguments is checked at the warp's next barrier, so that the check itself
// synchronises nothing a kernel forgot to; shared memory starts filled with NaNs; a fragment's store
// is written by lane 0 alone, and each WMMA call first yields the thread, so a lane that reads
// another's writes without a __syncwarp is likely to see the NaNs.
//
// Include it instead of <cuda_runtime.h>, <cuda_bf16.h> and <mma.h>. A kernel takes its dynamic
// shared memory as a pointer argument (the .cu's __global__ wrapper passes its extern __shared__
// array); Launch() passes a fresh buffer to each block.
#pragma once

#define CUDA_ON_CPU 1

#include <algorithm>
#include <condition_variable>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// A kernel's static shared memory (`__shared__ float partial[32];` in a device function): one copy
// for every thread, which is what a block's threads share, since the blocks of a launch run one
// after another. (Dynamic shared memory comes as Launch()'s pointer instead.)
#define __shared__ static

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};

namespace cuda_on_cpu {

[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "cuda_on_cpu: %s\n", what);
  std::abort();
}

// A reusable barrier for `count` threads.
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    const long generation = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0, ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != generation; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const int count_;
  int arrived_ = 0;
  long generation_ = 0;
};

struct Warp {
  Barrier sync{32};
  uint64_t slots[32] = {};                 // what each lane offers to a shuffle
  std::vector<uint64_t> collectives[32];   // each lane's WMMA calls (their arguments) since the last barrier
};

struct Block {
  dim3 idx, dim, grid;
  std::unique_ptr<Barrier> all;
  std::vector<std::unique_ptr<Warp>> warps;
};

struct Thread {
  dim3 idx;
  Block* block;
  Warp* warp;
  int lane;
};

inline thread_local Thread* current = nullptr;
inline Thread& Self() {
  if (current == nullptr) Fail("device code called outside Launch()");
  return *current;
}

// Once every lane of the warp has arrived at a barrier: aborts unless this lane made the same WMMA
// calls with the same arguments as lane 0 since the last one (warp-collectives must be uniform).
inline void CheckCollectives(const Thread& t) {
  if (t.warp->collectives[t.lane] != t.warp->collectives[0]) {
    Fail("wmma: the lanes of a warp made different calls or passed different pointers or ldm");
  }
}
// After the barrier that follows CheckCollectives: the lane's record starts again.
inline void ClearCollectives(const Thread& t) { t.warp->collectives[t.lane].clear(); }

// Every lane offers `v`; each gets the value lane `from(lane)` offered.
template <typename T, typename From>
T Exchange(T v, From from) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffles carry at most 64 bits");
  Thread& t = Self();
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  t.warp->slots[t.lane] = bits;
  t.warp->sync.Wait();
  const uint64_t got = t.warp->slots[from(t.lane)];
  CheckCollectives(t);
  t.warp->sync.Wait();  // nobody offers the next value before every lane has read this one
  ClearCollectives(t);
  T out;
  std::memcpy(&out, &got, sizeof(T));
  return out;
}

// Runs `kernel(smem, args...)` on grid x block threads (block.x a multiple of 32, y = z = 1), each
// block with `smem_bytes` of fresh shared memory filled with NaNs.
template <typename Kernel, typename... Args>
void Launch(dim3 grid, dim3 block, size_t smem_bytes, Kernel kernel, Args... args) {
  if (block.x % 32 != 0 || block.y != 1 || block.z != 1) Fail("Launch: blocks must be 1-D, whole warps");
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        Block b;
        b.idx = dim3(x, y, z), b.dim = block, b.grid = grid;
        b.all = std::make_unique<Barrier>(int(block.x));
        for (unsigned w = 0; w < block.x / 32; ++w) b.warps.push_back(std::make_unique<Warp>());
        std::unique_ptr<float[]> smem(new float[smem_bytes / sizeof(float) + 32]);
        std::fill_n(smem.get(), smem_bytes / sizeof(float) + 32, std::nanf(""));
        unsigned char* base = reinterpret_cast<unsigned char*>(smem.get());
        base += (128 - reinterpret_cast<uintptr_t>(base) % 128) % 128;  // as aligned as a GPU's
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block.x; ++t) {
          threads.emplace_back([&, t] {
            Thread self{dim3(t), &b, b.warps[t / 32].get(), int(t % 32)};
            current = &self;
            kernel(base, args...);
            self.warp->sync.Wait();  // the WMMA calls since the last barrier, checked at the end
            CheckCollectives(self);
            current = nullptr;
          });
        }
        for (std::thread& th : threads) th.join();
      }
}

}  // namespace cuda_on_cpu

#define threadIdx (::cuda_on_cpu::Self().idx)
#define blockIdx (::cuda_on_cpu::Self().block->idx)
#define blockDim (::cuda_on_cpu::Self().block->dim)
#define gridDim (::cuda_on_cpu::Self().block->grid)

inline void __syncthreads() {
  const ::cuda_on_cpu::Thread& t = ::cuda_on_cpu::Self();
  t.block->all->Wait();
  ::cuda_on_cpu::CheckCollectives(t);
  t.warp->sync.Wait();
  ::cuda_on_cpu::ClearCollectives(t);
}
inline void __syncwarp(unsigned = 0xffffffffu) {
  const ::cuda_on_cpu::Thread& t = ::cuda_on_cpu::Self();
  t.warp->sync.Wait();
  ::cuda_on_cpu::CheckCollectives(t);
  t.warp->sync.Wait();
  ::cuda_on_cpu::ClearCollectives(t);
}
template <typename T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return ::cuda_on_cpu::Exchange(v, [mask](int lane) { return lane ^ mask; });
}

// CUDA's min and max for the kernels' namespace (device code calls them unqualified); on floating
// types they are fminf / fmaxf, which return the other argument for a NaN.
namespace lrkv::cuda {
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmin(C(a), C(b));
  return std::min<C>(a, b);
}
template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmax(C(a), C(b));
  return std::max<C>(a, b);
}
}  // namespace lrkv::cuda

// bf16: the upper 16 bits of a float, rounded to nearest even.
struct __nv_bfloat16 {
  uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return __nv_bfloat16{uint16_t((u >> 16) | 0x40)};
  u += 0x7fff + ((u >> 16) & 1);
  return __nv_bfloat16{uint16_t(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) {
  const uint32_t u = uint32_t(b.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// WMMA, 16x16x16 only. A fragment holds its whole tile in every lane (a GPU spreads it over the
// lanes); code that treats x[] elementwise, the only use WMMA defines, runs the same on both.
namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "cuda_on_cpu emulates 16x16x16 fragments only");
  static constexpr int num_elements = 256;
  T x[256];  // (row, column) at x[row * 16 + column] of the tile: A (M, K), B (K, N), C (M, N)
};

namespace detail {
// Checks a WMMA call's alignment rules and records it for the uniformity check; yields first, so that
// the lanes interleave as they might on a GPU.
template <typename T>
void CheckArguments(const void* p, unsigned ldm, const char* what) {
  std::this_thread::yield();
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0) cuda_on_cpu::Fail(what);  // 256-bit aligned
  if ((ldm * sizeof(T)) % 16 != 0) cuda_on_cpu::Fail(what);                // ldm: a multiple of 16 bytes
  const cuda_on_cpu::Thread& t = cuda_on_cpu::Self();
  t.warp->collectives[t.lane].push_back(uint64_t(reinterpret_cast<uintptr_t>(p)) ^ (uint64_t(ldm) << 52));
}
inline float ToFloat(float x) { return x; }
inline float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
}  // namespace detail

// A (16, 16): row-major at p[i * ldm + k], column-major at p[k * ldm + i]; B likewise as (K, N).
template <typename Use, typename T, typename Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm) {
  detail::CheckArguments<T>(p, ldm, "wmma::load_matrix_sync: pointer not 256-bit aligned or ldm not 16 bytes");
  constexpr bool row = std::is_same<Layout, row_major>::value;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) f.x[i * 16 + j] = row ? p[i * ldm + j] : p[j * ldm + i];
}
template <typename T>
void load_matrix_sync(fragment<accumulator, 16, 16, 16, T>& f, const T* p, unsigned ldm, layout_t layout) {
  detail::CheckArguments<T>(p, ldm, "wmma::load_matrix_sync: pointer not 256-bit aligned or ldm not 16 bytes");
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) f.x[i * 16 + j] = layout == mem_row_major ? p[i * ldm + j] : p[j * ldm + i];
}
template <typename T>
void store_matrix_sync(T* p, const fragment<accumulator, 16, 16, 16, T>& f, unsigned ldm, layout_t layout) {
  detail::CheckArguments<T>(p, ldm, "wmma::store_matrix_sync: pointer not 256-bit aligned or ldm not 16 bytes");
  if (cuda_on_cpu::Self().lane != 0) return;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) (layout == mem_row_major ? p[i * ldm + j] : p[j * ldm + i]) = f.x[i * 16 + j];
}
template <typename Use, typename T, typename Layout>
void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& f, T v) {
  for (T& x : f.x) x = v;
}
// D = A B + C, products and sums in fp32.
template <typename TA, typename LA, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, TA, LA>& a,
              const fragment<matrix_b, 16, 16, 16, TA, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  float out[256];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = c.x[i * 16 + j];
      for (int k = 0; k < 16; ++k) s += detail::ToFloat(a.x[i * 16 + k]) * detail::ToFloat(b.x[k * 16 + j]);
      out[i * 16 + j] = s;
    }
  std::memcpy(d.x, out, sizeof(out));
}

}  // namespace nvcuda::wmma
