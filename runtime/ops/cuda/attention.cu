// Causal attention on CUDA, flash-attention style: no (T, T) matrix is ever materialised in device
// memory. Query rows, K/V tiles and the output accumulators live in shared memory; the softmax is
// computed online (running max and sum per row) and rescaled tile by tile.
//
// Forward: a block owns kBQ query rows of one (batch, head); its kWarps warps own kRowsPerWarp rows
// each. For every key tile of kBK keys (one key per lane) a warp computes the scores of one row
// (lane j: q_i . k_j), updates the row's running max m and sum l, and accumulates p_ij v_j into the
// row's output. Tiles past the block's last query row are skipped (causality).
//
// Backward (three passes over K/V instead of the fused FlashAttention-2 kernel; correct and
// deterministic, not tuned): (1) per query row, D_i = sum_j p_ij (dO_i . v_j) (the interface does
// not pass O, so dO . O cannot be used), then (2) dq_i = sum_j ds_ij k_j with ds_ij = p_ij (dp_ij -
// D_i) scale, both in one kernel over query tiles; (3) a kernel over key tiles of each KV head sums
// dv_j = sum_i p_ij dO_i and dk_j = sum_i ds_ij q_i over the group's local query heads, so dk and dv
// need no atomics.
//
// The forward saves each row's log-sum-exp in `lse` (B, H, T) (Acc<T>: fp32, or fp64 for f64
// tensors); backward reads it. (The kernels can also recompute it, lse_known = false.)
//
// bf16 heads whose widths flash_attention.cuh supports (multiples of 16, up to MLA's Dqk 192 / Dv
// 128) take its tensor-core kernels instead, forward and backward (LRKV_CUDA_FLASH_ATTENTION=0 keeps
// them on the SIMT kernels, for comparisons and as a way around them). Both save the same state, each
// row's log-sum-exp.
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/attention.h"
#include "runtime/ops/cuda/flash_attention.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/cuda/simt_attention.cuh"

namespace lrkv::cuda {
namespace {

using Dims = flash::Dims;
using simt::kBlockThreads;
using simt::kBQ;

Dims GetDims(const Tensor& q, const Tensor& v, const KvGroups& g, double scale) {
  return Dims{
      q.dim(0), q.dim(1), q.dim(2), v.dim(2), q.dim(3), v.dim(3), g.group, g.q_head_offset, static_cast<float>(scale)};
}

// The SIMT kernels (simt_attention.cuh) behind __global__ entry points, each handing over its
// dynamic shared memory.
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    ForwardKernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ o,
                  Acc<T>* __restrict__ lse, Dims d, Acc<T> scale) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  simt::Forward(smem_raw, q, k, v, o, lse, d, scale);
}
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    BackwardQueryKernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                        const T* __restrict__ v, Acc<T>* __restrict__ lse, bool lse_known, Acc<T>* __restrict__ dsum,
                        T* __restrict__ dq, Dims d, Acc<T> scale) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  simt::BackwardQueries(smem_raw, dout, q, k, v, lse, lse_known, dsum, dq, d, scale);
}
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    BackwardKeyKernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                      const T* __restrict__ v, const Acc<T>* __restrict__ lse, const Acc<T>* __restrict__ dsum,
                      T* __restrict__ dk, T* __restrict__ dv, Dims d, Acc<T> scale) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  simt::BackwardKeys(smem_raw, dout, q, k, v, lse, dsum, dk, dv, d, scale);
}

// The shared memory a block may opt in to on this process's device.
absl::StatusOr<size_t> OptInSharedBytes() {
  // Asked once: a process drives one device (its local rank's).
  static const absl::StatusOr<size_t> bytes = []() -> absl::StatusOr<size_t> {
    int device = 0, limit = 0;
    LRKV_CUDA_TRY(cudaGetDevice(&device));
    LRKV_CUDA_TRY(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return size_t(limit);
  }();
  return bytes;
}

// Opts the kernel in to `bytes` of dynamic shared memory, or explains why the head is too wide.
template <typename Kernel>
absl::Status PrepareSharedMemory(Kernel kernel, size_t bytes, const char* what, const Dims& d) {
  LRKV_TRY_ASSIGN(const size_t limit, OptInSharedBytes());
  if (bytes > limit) {
    return absl::UnimplementedError(absl::StrCat("CUDA attention ", what, ": head widths Dqk=", d.dqk, ", Dv=", d.dv,
                                                 " need ", bytes, " bytes of shared memory per block, the device has ",
                                                 limit));
  }
  LRKV_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  return absl::OkStatus();
}

// Blocks of `rows` query (or key) rows, per head, per sequence.
dim3 Grid(const Dims& d, int64_t heads, int64_t rows) {
  return dim3(static_cast<unsigned>((d.t + rows - 1) / rows), static_cast<unsigned>(heads), static_cast<unsigned>(d.b));
}

absl::Status CheckGrid(const Dims& d) {
  LRKV_REQUIRE(d.h <= 65535 && d.hk <= 65535 && d.b <= 65535,
               "CUDA attention: at most 65535 heads, KV heads and batch rows, got H=", d.h, ", Hk=", d.hk, ", B=", d.b);
  return absl::OkStatus();
}

// The tensor-core kernels (flash_attention.cuh) behind __global__ entry points, each handing over
// its dynamic shared memory.
__global__ void __launch_bounds__(flash::kThreads)
    FlashForwardKernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                       bf16* __restrict__ o, float* __restrict__ lse, flash::Dims d) {
  extern __shared__ __align__(128) unsigned char flash_smem[];
  flash::Forward(flash_smem, q, k, v, o, lse, d);
}
__global__ void __launch_bounds__(flash::kThreads)
    FlashBackwardQueriesKernel(const bf16* __restrict__ dout, const bf16* __restrict__ q, const bf16* __restrict__ k,
                               const bf16* __restrict__ v, const float* __restrict__ lse, float* __restrict__ dsum,
                               bf16* __restrict__ dq, flash::Dims d) {
  extern __shared__ __align__(128) unsigned char flash_smem[];
  flash::BackwardQueries(flash_smem, dout, q, k, v, lse, dsum, dq, d);
}
__global__ void __launch_bounds__(flash::kThreads)
    FlashBackwardKeysKernel(const bf16* __restrict__ dout, const bf16* __restrict__ q, const bf16* __restrict__ k,
                            const bf16* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ dsum,
                            bf16* __restrict__ dk, bf16* __restrict__ dv, flash::Dims d) {
  extern __shared__ __align__(128) unsigned char flash_smem[];
  flash::BackwardKeys(flash_smem, dout, q, k, v, lse, dsum, dk, dv, d);
}

// Whether the tensor-core kernels take these tensors: bf16, head widths they support, every bf16
// tensor they load on 16 bytes (8 elements at a time), and not switched off.
template <typename T>
bool UsesTensorCores(const Dims& d, std::initializer_list<const Tensor*> loaded) {
  static const bool enabled = [] {
    const char* env = std::getenv("LRKV_CUDA_FLASH_ATTENTION");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  if constexpr (!std::is_same<T, bf16>::value) {
    return false;
  } else {
    // One device per process: its limit once (0 if unknown: the SIMT kernels, whose launch reports why).
    if (!enabled || !flash::Supports(d.dqk, d.dv, OptInSharedBytes().value_or(0))) return false;
    for (const Tensor* t : loaded) {
      if (reinterpret_cast<uintptr_t>(t->raw()) % 16 != 0) return false;
    }
    return true;
  }
}

absl::Status FlashForward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse, const Dims& d) {
  const size_t bytes = flash::ForwardTiles(nullptr, d).arena.bytes();
  LRKV_TRY(PrepareSharedMemory(FlashForwardKernel, bytes, "forward (tensor cores)", d));
  FlashForwardKernel<<<Grid(d, d.h, flash::kBlockRows), flash::kThreads, bytes, CurrentStream()>>>(
      q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), o.data<bf16>(), lse.data<float>(), d);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

// dsum: (B, H, T) fp32 scratch for D, written by the queries' kernel, read by the keys'.
absl::Status FlashBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse,
                           Tensor& dq, Tensor& dk, Tensor& dv, float* dsum, const Dims& d) {
  if (d.h > 0) {
    const size_t bytes = flash::QueryGradTiles(nullptr, d).arena.bytes();
    LRKV_TRY(PrepareSharedMemory(FlashBackwardQueriesKernel, bytes, "backward (queries, tensor cores)", d));
    FlashBackwardQueriesKernel<<<Grid(d, d.h, flash::kBlockRows), flash::kThreads, bytes, CurrentStream()>>>(
        dout.data<bf16>(), q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), lse.data<float>(), dsum, dq.data<bf16>(), d);
    LRKV_CUDA_TRY_LAUNCH();
  }
  const size_t bytes = flash::KeyGradTiles(nullptr, d).arena.bytes();
  LRKV_TRY(PrepareSharedMemory(FlashBackwardKeysKernel, bytes, "backward (keys, tensor cores)", d));
  FlashBackwardKeysKernel<<<Grid(d, d.hk, flash::kBlockRows), flash::kThreads, bytes, CurrentStream()>>>(
      dout.data<bf16>(), q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), lse.data<float>(), dsum, dk.data<bf16>(),
      dv.data<bf16>(), d);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o, Tensor& lse_out,
                     KvGroups groups) {
  using A = Acc<T>;
  const Dims d = GetDims(q, v, groups, scale);
  if (d.b * d.h * d.t == 0) return absl::OkStatus();
  LRKV_TRY(CheckGrid(d));
  if (UsesTensorCores<T>(d, {&q, &k, &v})) return FlashForward(q, k, v, o, lse_out, d);
  const size_t bytes = simt::ForwardBytes<A>(d);
  LRKV_TRY(PrepareSharedMemory(ForwardKernel<T>, bytes, "forward", d));
  A* lse = lse_out.data<A>();
  ForwardKernel<T><<<Grid(d, d.h, kBQ), kBlockThreads, bytes, CurrentStream()>>>(q.data<T>(), k.data<T>(), v.data<T>(),
                                                                                 o.data<T>(), lse, d, A(scale));
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse_in,
                      double scale, Tensor& dq, Tensor& dk, Tensor& dv, KvGroups groups) {
  using A = Acc<T>;
  const Dims d = GetDims(q, v, groups, scale);
  if (d.b * d.hk * d.t == 0) return absl::OkStatus();
  LRKV_TRY(CheckGrid(d));
  const bool lse_known = true;
  // D per (batch, head, row).
  LRKV_TRY_ASSIGN(Tensor scratch, Tensor::Empty({d.b * d.h * d.t}, DTypeOf<A>::value, Device::kCuda));
  A* dsum = scratch.data<A>();
  if (UsesTensorCores<T>(d, {&dout, &q, &k, &v})) {
    return FlashBackward(dout, q, k, v, lse_in, dq, dk, dv, scratch.data<float>(), d);
  }
  A* lse = const_cast<A*>(lse_in.data<A>());
  if (d.h > 0) {
    const size_t bytes = simt::BackwardQueriesBytes<A>(d);
    LRKV_TRY(PrepareSharedMemory(BackwardQueryKernel<T>, bytes, "backward (queries)", d));
    BackwardQueryKernel<T><<<Grid(d, d.h, kBQ), kBlockThreads, bytes, CurrentStream()>>>(
        dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), lse, lse_known, dsum, dq.data<T>(), d, A(scale));
    LRKV_CUDA_TRY_LAUNCH();
  }
  const size_t bytes = simt::BackwardKeysBytes<A>(d);
  LRKV_TRY(PrepareSharedMemory(BackwardKeyKernel<T>, bytes, "backward (keys)", d));
  BackwardKeyKernel<T><<<Grid(d, d.hk, kBQ), kBlockThreads, bytes, CurrentStream()>>>(
      dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), lse, dsum, dk.data<T>(), dv.data<T>(), d, A(scale));
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& lse, KvGroups groups) {
  LRKV_CUDA_FLOAT_DISPATCH(q.dtype(), Forward, q, k, v, scale, o, lse, groups);
}
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& lse, double scale, Tensor& dq, Tensor& dk, Tensor& dv,
                                     KvGroups groups) {
  LRKV_CUDA_FLOAT_DISPATCH(q.dtype(), Backward, dout, q, k, v, lse, scale, dq, dk, dv, groups);
}

}  // namespace lrkv::cuda
