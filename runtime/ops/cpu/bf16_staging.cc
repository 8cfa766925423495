#include "runtime/ops/cast.h"
#include "runtime/ops/cpu/kernels.h"
#include "runtime/status.h"

namespace lrkv::cpu {
namespace {

constexpr int64_t kAlign = 16;  // elements: each staged tensor starts on a 64-byte boundary

// The staging copies live in one fp32 buffer per host device (the CPU's, the emulated device's:
// each op's tensors are on one), kept from op to op and grown to the largest op's need: a staged
// copy per op size would otherwise stay in the allocator's cache of freed blocks. Ops run one at a
// time on a process's calling thread (OpenMP parallelises inside them).
Tensor& Arena(Device device) {
  static Tensor* arenas = new Tensor[kDeviceKinds];  // never destroyed: the allocator may be gone at exit
  return arenas[static_cast<int>(device)];
}

int64_t Padded(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

int64_t Bf16StagingArenaBytes() {
  int64_t bytes = 0;
  for (Device d : {Device::kCpu, Device::kEmulated}) bytes += Arena(d).defined() ? Arena(d).nbytes() : 0;
  return bytes;
}
void ReleaseBf16StagingArena() {
  for (Device d : {Device::kCpu, Device::kEmulated}) Arena(d) = Tensor();
}

void Bf16Staging::Add(const Tensor* t, Tensor* output) {
  if (t == nullptr || !t->defined() || t->dtype() != DType::kBF16) return;
  for (Entry& e : entries_) {
    if (e.original == t) {  // the same tensor passed twice: written if either use writes it
      if (output != nullptr) e.output = output;
      return;
    }
  }
  entries_.push_back({t, output, nullptr});
}

absl::Status Bf16Staging::Allocate() {
  int64_t total = 0;
  for (const Entry& e : entries_) total += Padded(e.original->numel());
  if (total == 0) return absl::OkStatus();
  const Device device = entries_.front().original->device();
  Tensor& arena = Arena(device);
  if (!arena.defined() || arena.numel() < total) {
    // Grown rarely (during the first steps): the old buffer goes back to the system, not the cache.
    arena = Tensor();
    LRKV_TRY_ASSIGN(Allocator * allocator, AllocatorFor(device));
    LRKV_TRY(allocator->ReleaseCached());
    LRKV_TRY_ASSIGN(arena, Tensor::Empty({total}, DType::kF32, device));
  }
  int64_t at = 0;
  for (Entry& e : entries_) {
    const int64_t n = e.original->numel();
    LRKV_TRY_ASSIGN(Tensor slice, arena.Slice(at, at + n));
    LRKV_TRY_ASSIGN(Tensor staged, slice.View(e.original->shape()));
    LRKV_TRY(lrkv::Cast(*e.original, staged));
    e.staged = std::make_unique<Tensor>(std::move(staged));
    at += Padded(n);
  }
  return absl::OkStatus();
}

Tensor* Bf16Staging::Staged(const Tensor* t) const {
  for (const Entry& e : entries_)
    if (e.original == t) return e.staged.get();
  return const_cast<Tensor*>(t);  // not staged: the caller's own tensor, with the caller's constness
}

absl::Status Bf16Staging::Finish(absl::Status kernel_status) {
  LRKV_TRY(kernel_status);
  for (Entry& e : entries_) {
    if (e.output != nullptr) LRKV_TRY(lrkv::Cast(*e.staged, *e.output));
  }
  return absl::OkStatus();
}

}  // namespace lrkv::cpu
