// The CPU backend's kernels, one source per op (ops/cpu/<op>.cc), each reached through the CPU
// table (ops/cpu/backend.cc), not called directly: the launchers in ops/<op>.h check the arguments
// first. Templated on f32/f64 inside each source (LRKV_CPU_FLOAT_DISPATCH; bf16 through fp32 staging),
// OpenMP-parallel.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/dtype.h"
#include "runtime/status.h"
#include "runtime/ops/backend.h"  // the list of kernels and the types they take
#include "runtime/tensor.h"

namespace lrkv::cpu {

// This backend's table, filled in ops/cpu/backend.cc; reached through BackendOf (ops/backend.h).
const Backend& Table();

// Every kernel of ops/backend.h's list, under its function name.
#define LRKV_DECLARE_KERNEL_(member, function, params) absl::Status function params;
LRKV_BACKEND_KERNELS(LRKV_DECLARE_KERNEL_)
#undef LRKV_DECLARE_KERNEL_

}  // namespace lrkv::cpu

namespace lrkv::cpu {

// bf16 on the CPU: a kernel's fp32 instantiation runs on fp32 staging copies. Each bf16 tensor
// argument is widened to fp32 first (outputs too, since some kernels accumulate into them); after
// the kernel, each bf16 output is rounded back once. Arguments already fp32 (statistics, fp32
// gradients), token ids and scalars pass through as they are. So bf16 tensors are stored in bf16
// and every computation and accumulation is fp32's, as on the CUDA backend. The copies live in one
// buffer kept for the process, the size of the largest op's bf16 arguments in fp32 (the memory
// model's `staging`).
class Bf16Staging {
 public:
  // Before the kernel: notes `t` if it is bf16 (an output when not const).
  void Stage(const Tensor& t) { Add(&t, nullptr); }
  void Stage(Tensor& t) { Add(&t, &t); }
  void Stage(const Tensor* t) { Add(t, nullptr); }
  void Stage(Tensor* t) { Add(t, t); }
  void Stage(const std::vector<Tensor>& ts) {  // inputs (MLRA's latent blocks)
    for (const Tensor& t : ts) Add(&t, nullptr);
  }
  template <typename U> void Stage(const U&) {}
  // Then: the staging copies of the noted tensors, filled.
  absl::Status Allocate();

  // The argument to pass the fp32 kernel: the staging copy of a bf16 tensor, anything else as is.
  const Tensor& Arg(const Tensor& t) const { return *Staged(&t); }
  Tensor& Arg(Tensor& t) const { return *Staged(&t); }
  const Tensor* Arg(const Tensor* t) const { return Staged(t); }
  Tensor* Arg(Tensor* t) const { return Staged(t); }
  std::vector<Tensor> Arg(const std::vector<Tensor>& ts) const {
    std::vector<Tensor> staged;
    for (const Tensor& t : ts) staged.push_back(*Staged(&t));
    return staged;
  }
  template <typename U> U&& Arg(U&& u) const { return std::forward<U>(u); }

  // After the kernel: rounds each staged output back into its bf16 tensor.
  absl::Status Finish(absl::Status kernel_status);

 private:
  struct Entry {
    const Tensor* original;
    Tensor* output;  // the same tensor when written by the kernel, else null
    std::unique_ptr<Tensor> staged;
  };
  void Add(const Tensor* t, Tensor* output);
  Tensor* Staged(const Tensor* t) const;

  std::vector<Entry> entries_;
};

// Runs kernel (an fp32 instantiation) on `args` with bf16 tensors staged in fp32.
template <typename Kernel, typename... Args>
absl::Status RunStaged(Kernel kernel, Args&&... args) {
  Bf16Staging staging;
  (staging.Stage(args), ...);
  LRKV_TRY(staging.Allocate());
  return staging.Finish(kernel(staging.Arg(std::forward<Args>(args))...));
}

// Bytes of the staging buffer now (the largest op's so far), and its release (it is rebuilt by the
// next bf16 op): for the memory model's tests.
int64_t Bf16StagingArenaBytes();
void ReleaseBf16StagingArena();

}  // namespace lrkv::cpu

// Inside a CPU kernel file: instantiate the kernel template for the tensor's floating dtype (bf16
// runs the fp32 one through Bf16Staging).
#define LRKV_CPU_FLOAT_DISPATCH(dtype, kernel, ...)                                         \
  switch (dtype) {                                                                          \
    case ::lrkv::DType::kF32:                                                               \
      return kernel<float>(__VA_ARGS__);                                                    \
    case ::lrkv::DType::kF64:                                                               \
      return kernel<double>(__VA_ARGS__);                                                   \
    case ::lrkv::DType::kBF16:                                                              \
      return ::lrkv::cpu::RunStaged(kernel<float>, __VA_ARGS__);                            \
    default:                                                                                \
      return absl::UnimplementedError(                                                      \
          absl::StrCat(#kernel, ": dtype ", ::lrkv::DTypeName(dtype), " not supported on cpu")); \
  }
