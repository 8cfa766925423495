#include "parallel/pipeline_schedule.h"

#include <algorithm>

#include "runtime/status.h"

namespace lrkv {
namespace {

// The forward and backward pass of one micro-batch on this stage, with the messages around them.
class StageRunner {
 public:
  StageRunner(Communicator& pp, PipelineStage& stage) : pp_(pp), stage_(stage) {}
  bool first() const { return pp_.rank() == 0; }
  bool last() const { return pp_.rank() == pp_.size() - 1; }

  absl::Status Forward(int micro) {
    Tensor input, output;
    if (!first()) {
      const StageBoundary b = stage_.Boundary(micro);
      LRKV_TRY_ASSIGN(input, Tensor::Empty(b.shape, b.dtype, b.device));
      LRKV_TRY(pp_.Recv(input, pp_.rank() - 1));
    }
    LRKV_TRY(stage_.Forward(micro, input, output));
    if (!last()) LRKV_TRY(pp_.SendAsync(output, pp_.rank() + 1));
    return absl::OkStatus();
  }

  absl::Status Backward(int micro) {
    Tensor doutput, dinput;
    if (!last()) {
      const StageBoundary b = stage_.Boundary(micro);
      LRKV_TRY_ASSIGN(doutput, Tensor::Empty(b.shape, b.dtype, b.device));
      LRKV_TRY(pp_.Recv(doutput, pp_.rank() + 1));
    }
    LRKV_TRY(stage_.Backward(micro, doutput, dinput));
    if (!first()) LRKV_TRY(pp_.SendAsync(dinput, pp_.rank() - 1));
    return absl::OkStatus();
  }

 private:
  Communicator& pp_;
  PipelineStage& stage_;
};

}  // namespace

absl::Status RunPipeline(PipelineSchedule schedule, Communicator& pp, PipelineStage& stage, int micro_batches) {
  StageRunner run(pp, stage);
  const int m = micro_batches;
  if (schedule == PipelineSchedule::kGPipe) {
    for (int i = 0; i < m; ++i) LRKV_TRY(run.Forward(i));
    for (int i = 0; i < m; ++i) LRKV_TRY(run.Backward(i));
  } else {
    const int warmup = std::min(pp.size() - pp.rank() - 1, m);
    for (int i = 0; i < warmup; ++i) LRKV_TRY(run.Forward(i));
    for (int i = 0; i < m - warmup; ++i) {
      LRKV_TRY(run.Forward(warmup + i));
      LRKV_TRY(run.Backward(i));
    }
    for (int i = m - warmup; i < m; ++i) LRKV_TRY(run.Backward(i));
  }
  return pp.WaitSends();
}

absl::Status RunPipelineForward(Communicator& pp, PipelineStage& stage, int micro_batches) {
  StageRunner run(pp, stage);
  for (int i = 0; i < micro_batches; ++i) LRKV_TRY(run.Forward(i));
  return pp.WaitSends();
}

}  // namespace lrkv
