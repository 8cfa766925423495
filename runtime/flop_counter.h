// Counts the floating-point operations that the GEMM and attention ops perform, by category and by
// pass. Convention: 2 FLOPs per multiply-add; the causal attention core counts the T(T+1)/2 query-key
// pairs it computes.
//
// There is no process-wide counter: whoever wants a count owns a FlopCounter and installs it with a
// CountFlopsInto scope; ops on that thread add to the innermost installed counter, and outside any
// scope nothing is counted. So a measurement nested in a step (the MFU peak's GEMMs, NotCounted) can
// neither reset nor inflate the step's counts.
#pragma once

#include <array>
#include <cstdint>

namespace lrkv {

enum class FlopCategory : int {
  kAttentionProjection = 0,  // Q/K/V projections, LRKV factors, MLA down/up projections, output projection
  kAttentionCore,            // QK^T and PV over causal pairs
  kMlp,
  kLmHead,
  kCount
};
// kRecompute: forward work redone in backward (activation recomputation), hardware FLOPs that are
// not model FLOPs.
enum class Pass : int { kForward = 0, kBackward, kRecompute, kCount };

const char* FlopCategoryName(FlopCategory c);

class FlopCounter {
 public:
  void Add(FlopCategory c, int64_t flops) { counts_[static_cast<int>(pass_)][static_cast<int>(c)] += flops; }
  int64_t Get(Pass p, FlopCategory c) const { return counts_[static_cast<int>(p)][static_cast<int>(c)]; }
  int64_t Total() const;       // hardware FLOPs: every pass
  int64_t ModelTotal() const;  // model FLOPs: forward and backward, no recomputation

  Pass pass() const { return pass_; }
  void set_pass(Pass p) { pass_ = p; }

 private:
  Pass pass_ = Pass::kForward;
  std::array<std::array<int64_t, static_cast<int>(FlopCategory::kCount)>, static_cast<int>(Pass::kCount)> counts_{};
};

// What the ops call: adds to this thread's innermost installed counter, if any.
void CountFlops(FlopCategory c, int64_t flops);
// The pass being counted (forward when no counter is installed).
Pass CountedPass();

// Installs `counter` (or none: null) for the lifetime of the scope on this thread.
class CountFlopsInto {
 public:
  explicit CountFlopsInto(FlopCounter* counter);
  ~CountFlopsInto();
  CountFlopsInto(const CountFlopsInto&) = delete;
  CountFlopsInto& operator=(const CountFlopsInto&) = delete;

 private:
  FlopCounter* saved_;
};

// Work done in this scope is not counted (a peak measurement's GEMMs are not training work).
class NotCounted : public CountFlopsInto {
 public:
  NotCounted() : CountFlopsInto(nullptr) {}
};

// Sets the pass that the installed counter counts into for the lifetime of the scope.
class PassScope {
 public:
  explicit PassScope(Pass p);
  ~PassScope();

 private:
  Pass saved_;
};

}  // namespace lrkv
