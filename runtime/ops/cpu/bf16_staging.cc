#include "runtime/ops/cast.h"
#include "runtime/ops/cpu/kernels.h"
#include "runtime/status.h"

namespace lrkv::cpu {

void Bf16Staging::Add(const Tensor* t, Tensor* output) {
  if (t == nullptr || !t->defined() || t->dtype() != DType::kBF16 || !status_.ok()) return;
  for (Entry& e : entries_) {
    if (e.original == t) {  // the same tensor passed twice: written if either use writes it
      if (output != nullptr) e.output = output;
      return;
    }
  }
  absl::StatusOr<Tensor> staged = Tensor::Empty(t->shape(), DType::kF32, t->device());
  if (!staged.ok()) {
    status_ = staged.status();
    return;
  }
  status_ = lrkv::Cast(*t, *staged);
  entries_.push_back({t, output, std::make_unique<Tensor>(*std::move(staged))});
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
