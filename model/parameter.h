// Model parameters: a named, ordered set of tensors with their gradients and how to initialise them.
// Initialisation is keyed by (seed, parameter name, global element index), so a parameter gets the
// same values whatever process, thread count or parallel layout creates it.
//
// Under tensor parallelism a parameter is either split along one dimension of its global shape
// (each TP rank holds one contiguous 1/tp block) or replicated on every TP rank. A replicated
// parameter's gradient is either the same on every rank (the block norms, which see the full
// activation) or a partial sum that must be summed over the TP group once per step (LRKV's shared
// K/V projection, MQA's K/V, MLA's down-projections: each rank back-propagates only its own heads).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/flop_counter.h"
#include "runtime/tensor.h"

namespace lrkv {

enum class InitKind { kNormal, kOnes, kZeros };
// What a parameter is, for the optimizer's weight-decay rules (train.decay_norms, train.decay_embeddings).
enum class ParamRole { kWeight, kNorm, kEmbedding };

// How a parameter is laid out over the tensor-parallel group.
enum class TpSplit {
  kReplicated,              // identical values and identical gradients on every TP rank
  kReplicatedPartialGrad,   // identical values; gradients summed over the TP group before the update
  kSplit,                   // split along ParameterSpec::split_dim into tp equal blocks
};

struct ParameterSpec {
  std::string name;   // "layers.3.attn.wq"
  Shape shape;        // global shape
  InitKind init = InitKind::kNormal;
  double std = 0.0;   // for kNormal
  ParamRole role = ParamRole::kWeight;
  TpSplit tp = TpSplit::kReplicated;
  int split_dim = 0;  // for TpSplit::kSplit
};

// Specs of linear weights (in, out) in the Megatron roles, initialised N(0, std^2):
//   column-parallel: split by output columns (each rank computes some output features);
//   row-parallel: split by input rows (each rank's output is a partial sum, all-reduced after);
//   replicated: whole on every TP rank, gradient a partial sum over the ranks' heads.
ParameterSpec ColumnParallelWeight(std::string name, int64_t in, int64_t out, double std);
ParameterSpec RowParallelWeight(std::string name, int64_t in, int64_t out, double std);
ParameterSpec ReplicatedWeight(std::string name, Shape shape, double std);

// This process's block of a parameter: its local shape and where it sits in the global one.
struct LocalBlock {
  Shape shape;         // local shape
  int dim = -1;        // split dimension, -1 when the parameter is whole
  int64_t offset = 0;  // start of the block along `dim`
};

// Mixed precision (a bf16 compute dtype): the optimizer updates fp32 master weights, and the
// forward and backward passes read a bf16 copy of them made after each update; gradients are fp32.
// In fp32 and fp64 the master and the value are one tensor.
//
// Under ZeRO-1 with mixed precision the masters are sharded (ParameterSet::ShardMasters): a rank
// keeps the master of only its shard's flat range [master_begin, master_end) of each parameter,
// as Megatron-LM's distributed optimizer does; the values stay whole on every rank.
struct Parameter {
  ParameterSpec spec;
  LocalBlock block;
  Tensor value;   // (block.shape) in the compute dtype: what the model's ops read
  // (block.shape) in AccumDType: what the optimizer updates and checkpoints keep; sharded, the
  // flat (master_end - master_begin) elements of the range only (none when the range is empty).
  Tensor master;
  int64_t master_begin = 0, master_end = 0;  // the flat range `master` holds: all of it unless sharded
  Tensor grad;    // (block.shape) in AccumDType, accumulated by backward passes, zeroed by the optimizer step
  // Where the set packs (ParameterSet::set_pack_weights, for decoding batches of sequences):
  // `value` repacked for few-row products (runtime/ops/packed_linear.h), made by the first such
  // product (LinearForward below) and dropped whenever the values change (RefreshValues). A linear
  // weight's memory twice over, for 1.3-2x faster products (README, "Decoding benchmark").
  bool packs = false;
  Tensor packed;
};

// y = x W for a linear weight w (in, out): through its packed copy where w packs and the rows suit
// it (PackedLinearSuits), else as runtime/ops/linear.h's LinearForward.
absl::Status LinearForward(const Tensor& x, Parameter& w, Tensor& y, FlopCategory category);
// y = x W^T for a weight stored (out, in), as the LM head is, the same way.
absl::Status LinearForwardTransposed(const Tensor& x, Parameter& w, Tensor& y, FlopCategory category);

// Elements [begin, end) (flat) of a parameter's master, as a flat view; the range must lie in the
// one this rank holds.
absl::StatusOr<Tensor> MasterElements(const Parameter& p, int64_t begin, int64_t end);

// A process's place in the tensor-parallel group, as the parameters see it.
struct TpRank {
  int index = 0, size = 1;
  // Built for decoding: a variant may partition its attention otherwise than by head (MLRA by
  // latent block); such a model runs inference only.
  bool decoding = false;
};

class ParameterSet {
 public:
  // `dtype`: the compute dtype (bf16 makes fp32 masters beside bf16 values).
  ParameterSet(DType dtype, Device device, TpRank tp = {}) : dtype_(dtype), device_(device), tp_(tp) {}

  // Allocates value, master and grad of this rank's block (grad zeroed); the weights are filled by
  // Initialize. Fails when a split dimension is not divisible by the TP size.
  absl::StatusOr<Parameter*> Add(ParameterSpec spec);
  // Mixed precision only: parameter i keeps its master for the flat range ranges[i] only
  // (begin == end: none), its whole master freed. Before Initialize or a checkpoint load.
  struct MasterRange {
    int64_t begin, end;
  };
  absl::Status ShardMasters(const std::vector<MasterRange>& ranges);
  bool masters_sharded() const { return masters_sharded_; }
  // Whether the linear weights are packed for few-row products (Parameter::packed): off by default.
  // Worth its memory when decoding batches of sequences; one sequence's tokens are single rows.
  void set_pack_weights(bool pack);
  // Fills the masters, then the values (whole, also where the masters are sharded).
  absl::Status Initialize(uint64_t seed);
  // After the masters changed (an optimizer step, a checkpoint load): the values from the masters,
  // rounded to the compute dtype; in every dtype the packed copies are dropped (made again on
  // use). With sharded masters only the ranges held are refreshed; the caller gathers the rest
  // from the other ranks.
  absl::Status RefreshValues();
  absl::Status ZeroGrads();

  Parameter* Find(const std::string& name) const;  // nullptr if absent
  const std::vector<std::unique_ptr<Parameter>>& all() const { return params_; }
  int64_t NumElements() const;
  DType dtype() const { return dtype_; }                       // compute dtype (values)
  DType master_dtype() const { return AccumDType(dtype_); }    // masters and gradients
  bool mixed_precision() const { return master_dtype() != dtype_; }
  Device device() const { return device_; }
  TpRank tp() const { return tp_; }

 private:
  DType dtype_;
  Device device_;
  TpRank tp_;
  bool masters_sharded_ = false;
  bool pack_weights_ = false;
  std::vector<std::unique_ptr<Parameter>> params_;
};

// Flat index in the global tensor of element `local_index` of `block` (of a tensor of `global` shape).
int64_t GlobalIndex(const Shape& global, const LocalBlock& block, int64_t local_index);

// N(0, 1) sample for element `index` of parameter `name` under `seed` (Box-Muller on two hashes).
double InitNormal(uint64_t seed, const std::string& name, int64_t index);

}  // namespace lrkv
