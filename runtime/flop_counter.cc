#include "runtime/flop_counter.h"

namespace lrkv {

const char* FlopCategoryName(FlopCategory c) {
  switch (c) {
    case FlopCategory::kAttentionProjection: return "attention_projection";
    case FlopCategory::kAttentionCore: return "attention_core";
    case FlopCategory::kMlp: return "mlp";
    case FlopCategory::kLmHead: return "lm_head";
    case FlopCategory::kCount: break;
  }
  return "?";
}

FlopCounter& FlopCounter::Global() {
  static FlopCounter counter;
  return counter;
}

int64_t FlopCounter::Total() const {
  int64_t t = 0;
  for (const auto& pass : counts_)
    for (const auto& c : pass) t += c.load(std::memory_order_relaxed);
  return t;
}

void FlopCounter::Reset() {
  for (auto& pass : counts_)
    for (auto& c : pass) c.store(0, std::memory_order_relaxed);
}

}  // namespace lrkv
