// The Decoder as a pipeline stage (parallel/pipeline_schedule.h): fetches each micro-batch's
// tokens and targets through a callback, keeps each micro-batch's activations from its forward
// pass until its backward pass, and sums the losses the last stage computes.
//   tokens, targets of a micro-batch: i32 (rows, T); activations between stages: (rows, T, d)
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include "model/decoder.h"
#include "parallel/pipeline_schedule.h"

namespace lrkv {

class DecoderStage final : public PipelineStage {
 public:
  // Number of rows of micro-batch `micro`.
  using RowsFn = std::function<int64_t(int micro)>;
  // Writes micro-batch `micro`'s tokens and targets ((rows, T) each, row-major).
  using BatchFn = std::function<void(int micro, int32_t* tokens, int32_t* targets)>;

  // `loss_scale`: the weight of each token's loss in the objective being differentiated.
  DecoderStage(Decoder& model, RowsFn rows, BatchFn batch, double loss_scale, bool backward)
      : model_(model), rows_(std::move(rows)), batch_(std::move(batch)), loss_scale_(loss_scale),
        backward_(backward) {}

  StageBoundary Boundary(int micro) const override;
  absl::Status Forward(int micro, const Tensor& input, Tensor& output) override;
  absl::Status Backward(int micro, const Tensor& doutput, Tensor& dinput) override;

  // Sum of the per-token losses of the micro-batches run since the last TakeLossSum (last stage;
  // 0 elsewhere). Taken per step, so a step's loss does not depend on where the run started (a
  // difference of running totals would, in its last bits, and a resumed run would not match).
  double loss_sum() const { return loss_sum_; }
  double TakeLossSum() { return std::exchange(loss_sum_, 0.0); }

 private:
  Decoder& model_;
  RowsFn rows_;
  BatchFn batch_;
  double loss_scale_;
  bool backward_;  // keep activations for Backward (false: evaluation)
  double loss_sum_ = 0;
  std::map<int, DecoderActivations> saved_;
};

}  // namespace lrkv
