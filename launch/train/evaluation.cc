#include "launch/train/evaluation.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/token_shard.h"
#include "model/decoder_stage.h"
#include "parallel/agreement.h"
#include "parallel/pipeline_schedule.h"
#include "runtime/status.h"

namespace lrkv {

bool ReportsLoss(ProcessMesh& mesh) { return mesh.last_stage() && mesh.tp_index() == 0; }

absl::StatusOr<data::TokenBuffer> LoadTokenShard(const std::string& path, int vocab_size, uint32_t* fingerprint) {
  LRKV_TRY_ASSIGN(data::TokenShard shard, data::ReadTokenShard(path));
  LRKV_REQUIRE(*fingerprint == 0 || shard.tokenizer_fingerprint == 0 || shard.tokenizer_fingerprint == *fingerprint,
               path, " was made by another tokenizer than the other shard of ",
               std::filesystem::path(path).parent_path().string(), ": re-run prepare-data");
  if (shard.tokenizer_fingerprint != 0) *fingerprint = shard.tokenizer_fingerprint;
  if (shard.vocab_size != vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, " was tokenized with a vocabulary of ", shard.vocab_size,
                                                   " but model.vocab_size is ", vocab_size,
                                                   ": re-run prepare-data with --vocab_size or fix the config"));
  }
  return std::make_shared<const std::vector<int32_t>>(std::move(shard.tokens));
}

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
