// Pipeline parallelism: the schedule that runs a step's micro-batches through the stages of one
// pipeline. It knows nothing of what a stage computes: a stage maps an input activation to an
// output activation per micro-batch, and back. Activations and their gradients travel between
// neighbouring stages as point-to-point messages on the `pp` group (rank = stage index); sends are
// asynchronous, so two neighbours never deadlock on each other's send.
//
// Schedules, for p stages and m micro-batches (F = forward, B = backward of a micro-batch):
//  - 1F1B (PipeDream-Flush, Megatron's default): stage s runs min(p - s - 1, m) warm-up forwards,
//    then alternates one forward and one backward, then drains the remaining backwards. At most
//    p - s micro-batches' activations are alive on stage s.
//  - GPipe: every forward, then every backward (m micro-batches' activations alive).
// With p = 1 both are plain gradient accumulation: F B F B ... (1F1B) or F F ... B B (GPipe).
#pragma once

#include "absl/status/status.h"
#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace lrkv {

// What travels between stages for one micro-batch: the activation (and its gradient) has this
// shape and dtype.
struct StageBoundary {
  Shape shape;
  DType dtype = DType::kF32;
  Device device = Device::kCpu;  // where the stage computes: the messages are received there
};

class PipelineStage {
 public:
  virtual ~PipelineStage() = default;
  // The activation this stage receives for micro-batch `micro` (the same on every stage).
  virtual StageBoundary Boundary(int micro) const = 0;
  // `input` is the previous stage's output for micro-batch `micro` (undefined on the first stage).
  // Sets `output` to this stage's output (left undefined on the last stage). The stage keeps what
  // its Backward needs for `micro`.
  virtual absl::Status Forward(int micro, const Tensor& input, Tensor& output) = 0;
  // `doutput` is the gradient of this stage's output (undefined on the last stage). Sets `dinput`
  // to the gradient of its input (left undefined on the first stage) and accumulates parameter
  // gradients.
  virtual absl::Status Backward(int micro, const Tensor& doutput, Tensor& dinput) = 0;
};

enum class PipelineSchedule { k1F1B, kGPipe };

// One training step's forward and backward passes of `micro_batches` micro-batches.
absl::Status RunPipeline(PipelineSchedule schedule, Communicator& pp, PipelineStage& stage, int micro_batches);
// Forward passes only (evaluation).
absl::Status RunPipelineForward(Communicator& pp, PipelineStage& stage, int micro_batches);

}  // namespace lrkv
