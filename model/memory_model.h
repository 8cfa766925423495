// The memory model: what one rank of a training job holds at its peak, by category, predicted
// from the config and layout alone (no allocation), so that `lrkv memory` can answer "does it fit"
// for a 6B run on a laptop and the trainer can refuse a job that cannot fit before it starts.
//
// It counts the tensors the code allocates, as the code allocates them (checked against the
// allocator's own peak in tests/unit/memory_model_test.cc, and against the peak resident memory of
// real runs in tests/integration/memory.sh):
//   - state: parameter values, gradients and the two AdamW moments, fp32 (the moments sharded over
//     DP under ZeRO-1); under train.precision = BF16 the values are bf16 and fp32 master weights
//     sit beside them (sharded over DP with the moments under ZeRO-1); the rank's parameters are
//     flop_model.h's AnalyzeLayout figure;
//   - activations: what each block's forward keeps for its backward (block.h, attention_layer.h,
//     the variant's own saved state from its registry entry), per micro-batch, for the recompute
//     mode, times the micro-batches alive at once on the stage (1F1B: pp - stage; GPipe: all);
//   - working: the most a forward or backward pass allocates on top of that at any moment: the
//     logits and their gradient on the last stage, one block's backward (its gradients, under BLOCK
//     its recomputed activations);
//   - staging: bf16 on the CPU only, the one buffer of fp32 copies its kernels compute on
//     (runtime/ops/cpu/kernels.h), held from the first step on: the largest op's bf16 arguments;
//   - cache: what the allocator keeps of freed tensors that the peak cannot reuse (it caches blocks
//     by size class): the logits' gradient on the last stage, freed before the blocks' backward;
//   - communication: the gradient reduction's buffers after backward (a DP bucket; ZeRO-1's packed
//     gradients and shard, then its parameter all-gather), on top of the activations' blocks, which
//     the cache keeps for the next step;
//   - runtime: the process itself before any tensor (code, the CUDA libraries linked in, MPI, BLAS;
//     on a GPU the context and NCCL's buffers), a measured constant per backend.
// peak = runtime + state + staging + activations + max(working + cache, communication): the live
// tensors' peak (PyTorch's "allocated") is runtime and cache less; the allocator's ("reserved")
// runtime less.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "model/config.pb.h"
#include "runtime/dtype.h"

namespace lrkv {

struct MemoryCategory {
  const char* name;  // "parameters", ..., "peak": `lrkv memory`'s rows and JSON keys (with "_bytes")
  double bytes;
};

struct RankMemory {
  int stage = 0;  // pipeline stage; every TP and DP rank of a stage holds the same
  // In doubles: a layout far too large must be reported, not overflowed.
  // parameters: the values the passes read (compute dtype); master_weights: their fp32 masters
  // under BF16, the rank's ZeRO-1 shard of them with ZeRO-1 (0 in FP32, where the values are the
  // masters).
  double parameters = 0, master_weights = 0, gradients = 0, optimizer_state = 0;
  double activations_per_micro_batch = 0;
  int micro_batches_in_flight = 0;
  double activations = 0;  // activations_per_micro_batch x micro_batches_in_flight
  double working = 0;
  double staging = 0;
  double cache = 0;
  double communication = 0;
  double runtime = 0;
  double state() const { return parameters + master_weights + gradients + optimizer_state; }
  double peak() const;
  // The live tensors' peak (PyTorch's max_memory_allocated): after backward the activations are
  // freed, not live, while the reduction runs.
  double allocated_peak() const { return state() + staging + std::max(activations + working, communication); }
  double reserved_peak() const { return peak() - runtime; }  // the allocator's (max_memory_reserved)
  // Every category above, then the three peaks, in that order.
  std::vector<MemoryCategory> Categories() const;
};

// Values (not bytes) per token of one TP rank, for one layer: what its forward keeps for backward
// under `mode`, and the most its backward has alive at once beyond that; of each, the fp32
// statistics (norms' rstd and mean, the attention's log-sum-exp), 4 bytes in either precision.
struct LayerMemory {
  int64_t saved = 0, saved_stats = 0;
  int64_t backward = 0, backward_stats = 0;
};
LayerMemory LayerValuesPerToken(const ModelConfig& model, int tp, Recompute mode);

// One entry per pipeline stage, for a config that passed validation (its layout, micro-batch and
// recompute mode as given), training on `device`.
std::vector<RankMemory> PredictRankMemory(const RunConfig& config, Device device = Device::kCpu);

// The stage with the largest peak.
RankMemory LargestRank(const std::vector<RankMemory>& stages);

}  // namespace lrkv
