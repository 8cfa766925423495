#include "runtime/flop_counter.h"

namespace lrkv {
namespace {
thread_local FlopCounter* installed = nullptr;
}  // namespace

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

int64_t FlopCounter::Total() const {
  int64_t t = 0;
  for (const auto& pass : counts_)
    for (int64_t c : pass) t += c;
  return t;
}

int64_t FlopCounter::ModelTotal() const {
  int64_t t = 0;
  for (Pass p : {Pass::kForward, Pass::kBackward})
    for (int64_t c : counts_[static_cast<int>(p)]) t += c;
  return t;
}

void CountFlops(FlopCategory c, int64_t flops) {
  if (installed != nullptr) installed->Add(c, flops);
}

Pass CountedPass() { return installed != nullptr ? installed->pass() : Pass::kForward; }

CountFlopsInto::CountFlopsInto(FlopCounter* counter) : saved_(installed) { installed = counter; }
CountFlopsInto::~CountFlopsInto() { installed = saved_; }

PassScope::PassScope(Pass p) : saved_(CountedPass()) {
  if (installed != nullptr) installed->set_pass(p);
}
PassScope::~PassScope() {
  if (installed != nullptr) installed->set_pass(saved_);
}

}  // namespace lrkv
