// Counts the floating-point operations that the GEMM and attention ops perform, by category and by
// pass. Convention: 2 FLOPs per multiply-add; the causal attention core counts the T(T+1)/2 query-key
// pairs it computes. Ops add to the process-wide counter; the trainer reads and resets it per step.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace lrkv {

enum class FlopCategory : int {
  kAttentionProjection = 0,  // Q/K/V projections, LRKV factors, MLA down/up projections, output projection
  kAttentionCore,            // QK^T and PV over causal pairs
  kMlp,
  kLmHead,
  kCount
};
enum class Pass : int { kForward = 0, kBackward, kCount };

const char* FlopCategoryName(FlopCategory c);

class FlopCounter {
 public:
  static FlopCounter& Global();

  void Add(FlopCategory c, int64_t flops) {
    if (paused_.load(std::memory_order_relaxed)) return;
    counts_[static_cast<int>(pass_)][static_cast<int>(c)].fetch_add(flops, std::memory_order_relaxed);
  }
  int64_t Get(Pass p, FlopCategory c) const {
    return counts_[static_cast<int>(p)][static_cast<int>(c)].load(std::memory_order_relaxed);
  }
  int64_t Total() const;
  void Reset();

  Pass pass() const { return pass_; }
  void set_pass(Pass p) { pass_ = p; }

 private:
  friend class NotCounted;
  Pass pass_ = Pass::kForward;
  std::atomic<bool> paused_{false};
  std::array<std::array<std::atomic<int64_t>, static_cast<int>(FlopCategory::kCount)>,
             static_cast<int>(Pass::kCount)>
      counts_{};
};

// Work done in this scope is not counted (a peak measurement's GEMMs are not training work), and
// the counts taken so far are left as they are.
class NotCounted {
 public:
  NotCounted() : saved_(FlopCounter::Global().paused_.exchange(true)) {}
  ~NotCounted() { FlopCounter::Global().paused_.store(saved_); }
  NotCounted(const NotCounted&) = delete;
  NotCounted& operator=(const NotCounted&) = delete;

 private:
  bool saved_;
};

// Sets the pass that ops count into for the lifetime of the scope.
class PassScope {
 public:
  explicit PassScope(Pass p) : saved_(FlopCounter::Global().pass()) { FlopCounter::Global().set_pass(p); }
  ~PassScope() { FlopCounter::Global().set_pass(saved_); }

 private:
  Pass saved_;
};

}  // namespace lrkv
