#include "launch/train/memory_check.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/str_format.h"
#include "model/flop_model.h"

namespace lrkv {

RankMemory EstimateRankMemory(const RunConfig& config) {
  const ModelConfig& m = config.model();
  const ParallelConfig& p = config.parallel();
  const TrainConfig& t = config.train();
  int64_t params = 0, layers = 0;
  for (const RankCost& stage : AnalyzeLayout(m, p.tp(), p.pp())) {
    params = std::max(params, stage.params);
    layers = std::max<int64_t>(layers, stage.end_layer - stage.first_layer);
  }
  RankMemory r;
  // value + gradient, and two AdamW moments (sharded over DP with ZeRO-1), all fp32.
  r.state_bytes = 8.0 * params + 8.0 * params / (p.zero1() ? p.dp() : 1);
  // Per token and layer backward keeps at least the block inputs, norms, Q/K/V, attention output
  // and the MLP's hidden activations (about 10 d + 2 d_ff / tp values) and one attention
  // probability row per head (H / tp x T); 1F1B holds up to pp micro-batches on the first stage.
  const double tokens = double(t.micro_batch()) * m.seq_len();
  const double per_token_layer = 10.0 * m.d_model() + 2.0 * m.d_ff() / p.tp() + double(m.n_heads()) / p.tp() * m.seq_len();
  const int64_t accumulation = std::max<int64_t>(1, t.global_batch() / (int64_t(p.dp()) * t.micro_batch()));
  const int64_t in_flight = std::min<int64_t>(p.pp(), accumulation);
  r.activation_bytes = 4.0 * tokens * (per_token_layer * double(layers * in_flight) + 2.0 * m.vocab_size() / p.tp());
  return r;
}

int64_t UsableMemoryBytes() {
  int64_t bytes = int64_t(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
  std::ifstream cgroup("/sys/fs/cgroup/memory.max");  // cgroup v2; "max" when unlimited
  if (std::string limit; cgroup >> limit && limit != "max") bytes = std::min<int64_t>(bytes, std::stoll(limit));
  return bytes;
}

absl::Status CheckMemoryFits(const RunConfig& config, MPI_Comm world) {
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_ranks = 1;
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  const RankMemory need = EstimateRankMemory(config);
  const int64_t have = UsableMemoryBytes();
  const double gib = 1024.0 * 1024 * 1024;
  if (need.total() * local_ranks <= double(have)) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "this job cannot fit in memory: each rank needs at least %.1f GiB (%.1f GiB of parameters, gradients and AdamW "
      "state, %.1f GiB of activations), %d ranks on this node need %.1f GiB, and the node has %.1f GiB; make the model "
      "smaller (model.n_layers, model.d_model), the micro-batch smaller (--micro_batches), or spread it over more "
      "nodes (--tp, --pp, --zero1)",
      need.total() / gib, need.state_bytes / gib, need.activation_bytes / gib, local_ranks,
      need.total() * local_ranks / gib, double(have) / gib));
}

}  // namespace lrkv
