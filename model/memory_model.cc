#include "model/memory_model.h"

#include <algorithm>

#include "model/attention/variant_registry.h"
#include "model/flop_model.h"

namespace lrkv {
namespace {

// The process before any tensor: code and the libraries it maps (the CUDA libraries of a build with
// the CUDA backend are most of it), MPI, OpenBLAS's buffers, oneDNN's code and JIT kernels, the
// token shards. Measured: `lrkv train` of a 1-layer model of width 16 on the Brown corpus peaks at
// 214 MiB resident with 13 MiB of tensors (197 and 13 with LRKV_CPU_GEMM=openblas, or a build
// without oneDNN: within the 10% that tests/integration/memory.sh allows), and larger runs keep
// that difference.
constexpr double kCpuRuntimeBytes = 201.0 * (1 << 20);
// On a GPU: the CUDA context, cuBLASLt's workspace and NCCL's buffers. An estimate (about 0.6 GiB
// of context on a Hopper part, the rest NCCL's) until measured on a device (issue 12's script).
constexpr double kCudaRuntimeBytes = 1.0 * (1 << 30);

// Masters, gradients and AdamW moments are fp32 in either precision; activations (and, under
// BF16, the values the passes read beside the masters) 4 bytes in FP32, 2 in BF16. Statistics
// are fp32 in both, counted apart (BlockValues::stats, LayerMemory::saved_stats) at 4 bytes.
constexpr double kStateBytes = 4;
double ActivationBytes(Precision p) { return p == BF16 ? 2 : 4; }

// bf16 on the CPU stages each op's bf16 tensors in fp32 (runtime/ops/cpu/kernels.h) in one buffer
// the size of the largest op's arguments at 4 bytes each.
struct Bf16Staging {
  double block = 0;   // a block's: the attention core's backward (dO, q, k, v, their gradients), an MLP GEMM's, a pointwise op's
  double logits = 0;  // the last stage's: the cross-entropy backward's (logits, their gradient) or the head GEMM's
};
Bf16Staging Bf16StagingBytes(const ModelConfig& m, int tp, double tokens) {
  const AttentionCost a = VariantOf(m).cost(m, tp);
  const double d = m.d_model(), f = m.d_ff() / tp, v = m.vocab_size() / tp;
  const double h = a.core_heads_per_rank, hk = a.core_kv_heads_per_rank;
  const double core = 2 * (h * a.qk_dim + hk * a.qk_dim + hk * a.v_dim) + h * a.v_dim;  // q, k, v both ways; dO
  // The pointwise backwards: SwiGLU's (dy, gate, up and their gradients) or the activation's (dy,
  // x, dx); a norm's (dy, x, dx), QK-norm's over the queries.
  const double pointwise = std::max({(m.activation() == SWIGLU ? 5 : 3) * f, 3 * d, m.qk_norm() ? 3 * h * a.qk_dim : 0});
  Bf16Staging s;
  s.block = kStateBytes * std::max(tokens * std::max(core, pointwise), tokens * (f + d) + d * f);
  s.logits = kStateBytes * std::max(tokens * 2 * v, tokens * (v + d) + v * d);
  return s;
}

// A block's activations per token on one TP rank (block.h, attention_layer.h, mlp.h).
struct BlockValues {
  int64_t full = 0;       // everything NONE keeps, the block input included
  int64_t stats = 0;      // of which fp32 statistics
  int64_t core_out = 0;   // the core's o, log-sum-exp and branch sums: what ATTENTION drops
  int64_t core_stats = 0; // of which the log-sum-exp
  int64_t mlp_phase = 0;  // the MLP's backward: its input gradient and hidden gradients
  int64_t attention_phase = 0;  // the attention's backward: dh, its input gradient, dO, dq, dk, dv...
};

BlockValues BlockValuesPerToken(const ModelConfig& m, int tp) {
  const AttentionCost a = VariantOf(m).cost(m, tp);
  const int64_t d = m.d_model(), f = m.d_ff() / tp;
  const int64_t h = a.core_heads_per_rank, hk = a.core_kv_heads_per_rank;
  const int64_t q = h * a.qk_dim, k = hk * a.qk_dim, v = hk * a.v_dim;
  const int64_t norm_stats = m.norm() == LAYERNORM ? 2 : 1;  // mean and rstd, or rstd, per token
  const int64_t qk_norm = m.qk_norm() ? q + k + h + hk : 0;  // q, k before the norm and their rstd
  const int64_t o_heads = a.branches > 1 ? h / a.branches * a.v_dim : 0;
  const int64_t hidden = (m.activation() == SWIGLU ? 3 : 2) * f;  // pre-activation (and gate), activation
  BlockValues b;
  b.core_out = h * a.v_dim + h + o_heads;
  b.core_stats = h;
  b.stats = 2 * norm_stats + (m.qk_norm() ? h + hk : 0) + b.core_stats + a.saved_stats_per_token;
  // input, two norms' statistics, the attention's normed input, h = x + attention, the MLP's input
  b.full = d + 2 * norm_stats + 3 * d + q + k + v + qk_norm + b.core_out + a.saved_per_token + hidden;
  b.mlp_phase = d + hidden;
  // dO, dq, dk, dv (the branch sums' gradient is gone by then); under QK-norm the raw dq, dk
  // beside the normed ones for a moment, then the variant's own backward.
  const int64_t after_core = std::max(m.qk_norm() ? q + k : 0, a.backward_per_token);
  b.attention_phase = 3 * d + h * a.v_dim + q + k + v + after_core;
  return b;
}

}  // namespace

double RankMemory::peak() const {
  return runtime + state() + staging + activations + std::max(working + cache, communication);
}

LayerMemory LayerValuesPerToken(const ModelConfig& m, int tp, Recompute mode) {
  const BlockValues b = BlockValuesPerToken(m, tp);
  const int64_t d = m.d_model();
  LayerMemory l;
  // The incoming gradient and the block's input gradient, then the larger of its two halves.
  l.backward = 2 * d + std::max(b.mlp_phase, b.attention_phase);
  switch (mode) {
    case BLOCK:  // only the input kept; backward reruns the block first (its output freed at once)
      l.saved = d;
      l.backward += b.full - d;
      l.backward_stats = b.stats;
      break;
    case ATTENTION:  // the core's outputs recomputed in backward
      l.saved = b.full - b.core_out;
      l.saved_stats = b.stats - b.core_stats;
      l.backward += b.core_out;
      l.backward_stats = b.core_stats;
      break;
    default:
      l.saved = b.full;
      l.saved_stats = b.stats;
  }
  return l;
}

std::vector<RankMemory> PredictRankMemory(const RunConfig& config, Device device) {
  const ModelConfig& m = config.model();
  const ParallelConfig& p = config.parallel();
  const TrainConfig& t = config.train();
  const int tp = p.tp(), pp = p.pp(), dp = p.dp();
  const int64_t d = m.d_model(), v_local = m.vocab_size() / tp, norm_stats = m.norm() == LAYERNORM ? 2 : 1;
  const double tokens = double(t.micro_batch()) * m.seq_len();
  const int accumulation = int(std::max<int64_t>(1, t.global_batch() / (int64_t(dp) * t.micro_batch())));
  const LayerMemory layer = LayerValuesPerToken(m, tp, t.recompute());
  // The largest gradient reduced in one piece: the embedding or head block unless a bucket is larger.
  const double largest_grad = double(v_local) * d;
  const double bucket = std::max(double(p.bucket_bytes()) / kStateBytes, largest_grad);
  const double act_bytes = ActivationBytes(t.precision());

  std::vector<RankMemory> ranks;
  for (const RankCost& cost : AnalyzeLayout(m, tp, pp)) {
    RankMemory r;
    r.stage = int(ranks.size());
    const bool last = r.stage == pp - 1;
    const double params = double(cost.params);
    r.parameters = act_bytes * params;  // the values the passes read
    // ZeRO-1 shards the moments over DP, and under BF16 the fp32 masters with them.
    const double shard = params / (p.zero1() ? dp : 1);
    if (t.precision() == BF16) r.master_weights = kStateBytes * shard;
    r.gradients = kStateBytes * params;
    r.optimizer_state = 2 * kStateBytes * shard;
    // Per micro-batch: the layers' saved state, the stage's output (its last block input is each
    // next layer's), token ids and targets (i32; on a GPU they stay on the host); on the last stage
    // the final norm, its output, the logits and their log-sum-exp.
    const bool host = device == Device::kCpu;
    const int64_t layers = cost.end_layer - cost.first_layer;
    double values = double(layers) * (layer.saved - layer.saved_stats) + d,
           four_byte = double(layers) * layer.saved_stats + (host ? 2 : 0);
    if (last) values += d + v_local, four_byte += norm_stats + 1;
    r.activations_per_micro_batch = tokens * (act_bytes * values + kStateBytes * four_byte);
    r.micro_batches_in_flight = p.schedule() == GPIPE ? accumulation
                                                                         : std::min(pp - r.stage, accumulation);
    r.activations = r.activations_per_micro_batch * r.micro_batches_in_flight;
    // Backward: the logits' gradient with the head's input gradient and the first block gradient,
    // or one block's backward; MPI's own copy of a TP all-reduce of (tokens, d) (NCCL reduces in
    // place, on a GPU).
    const bool staged = t.precision() == BF16 && host;
    const Bf16Staging staging = staged ? Bf16StagingBytes(m, tp, tokens) : Bf16Staging{};
    const double tp_copy = tp > 1 && host ? d : 0;
    double working = 0;
    if (layers > 0) {
      working = tokens * (act_bytes * (layer.backward - layer.backward_stats + tp_copy) +
                          kStateBytes * layer.backward_stats);
    }
    if (last) working = std::max(working, tokens * act_bytes * (v_local + 2 * d + tp_copy));
    r.working = working;
    r.staging = std::max(staging.block, last ? staging.logits : 0.0);
    // The logits' gradient, cached while the blocks' backward allocates other sizes.
    if (last && layers > 0) r.cache = act_bytes * tokens * v_local;
    // After backward: the gradient buckets (a packed copy, and MPI's), or ZeRO-1's packed
    // gradients, the rank's shard (and MPI's copy of it); NCCL on a GPU makes no copies. ZeRO-1's
    // all-gather of the values after the update (packed values and the rank's shard, in the
    // compute dtype) is never larger.
    const double copies = host ? 2 : 1;
    double comm = 0;
    if (dp > 1 || tp > 1) comm = copies * std::min(bucket, params);
    if (dp > 1 && p.zero1()) comm = std::max(comm, params + copies * params / dp);
    r.communication = kStateBytes * comm;
    r.runtime = host ? kCpuRuntimeBytes : kCudaRuntimeBytes;
    ranks.push_back(r);
  }
  return ranks;
}

std::vector<MemoryCategory> RankMemory::Categories() const {
  return {{"parameters", parameters}, {"master_weights", master_weights}, {"gradients", gradients},
          {"optimizer_state", optimizer_state},
          {"activations", activations}, {"working", working},       {"staging", staging},
          {"cache", cache},           {"communication", communication}, {"runtime", runtime},
          {"peak", peak()},           {"allocated_peak", allocated_peak()}, {"reserved_peak", reserved_peak()}};
}

RankMemory LargestRank(const std::vector<RankMemory>& stages) {
  return *std::max_element(stages.begin(), stages.end(),
                           [](const RankMemory& a, const RankMemory& b) { return a.peak() < b.peak(); });
}

}  // namespace lrkv
