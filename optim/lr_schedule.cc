#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace lrkv {

double LearningRate(const TrainConfig& t, int64_t step) {
  if (step < t.warmup_steps()) return t.lr() * double(step + 1) / double(t.warmup_steps());
  const int64_t decay_steps = std::max<int64_t>(1, t.steps() - t.warmup_steps());
  const double progress = std::min(1.0, double(step - t.warmup_steps()) / double(decay_steps));
  return t.min_lr() + 0.5 * (t.lr() - t.min_lr()) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace lrkv
