// Learning rate at a step: linear warmup from lr/warmup_steps to lr over train.warmup_steps, then
// cosine decay to train.min_lr at train.steps.
#pragma once

#include <cstdint>

#include "model/config.pb.h"

namespace lrkv {

double LearningRate(const TrainConfig& train, int64_t step);  // step is 0-based

}  // namespace lrkv
