#include "launch/train/evaluation.h"

#include <algorithm>
#include <vector>

#include "model/decoder_stage.h"
#include "parallel/agreement.h"
#include "parallel/pipeline_schedule.h"
#include "runtime/status.h"

namespace lrkv {

bool ReportsLoss(ProcessMesh& mesh) { return mesh.last_stage() && mesh.tp_index() == 0; }

absl::StatusOr<double> Evaluate(Decoder& model, const data::EvalSampler& val, const TrainConfig& t, ProcessMesh& mesh) {
  const int64_t mb = t.micro_batch(), seq = val.seq_len();
  const int64_t windows = std::min<int64_t>(int64_t(t.eval_batches()) * t.global_batch(), val.num_windows());
  int64_t first = 0, count = 0;
  data::RankSlice(windows, mesh.dp_index(), mesh.layout().dp, &first, &count);
  const int micro_batches = static_cast<int>((count + mb - 1) / mb);
  auto rows = [&](int micro) { return std::min(mb, count - micro * mb); };
  auto batch = [&](int micro, int32_t* tokens, int32_t* targets) {
    for (int64_t r = 0; r < rows(micro); ++r) {
      val.Window(first + micro * mb + r, tokens + r * seq, targets + r * seq);
    }
  };
  DecoderStage stage(model, rows, batch, /*loss_scale=*/0, /*backward=*/false);
  LRKV_TRY(RunPipelineForward(mesh.pp(), stage, micro_batches));
  std::vector<double> sums = {ReportsLoss(mesh) ? stage.loss_sum() : 0.0};
  LRKV_TRY(SumOverGroup(mesh.world(), sums));
  return sums[0] / (double(windows) * seq);
}


}  // namespace lrkv
