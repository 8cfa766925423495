// Data parallelism over a set of gradient (and parameter) tensors; knows nothing of what they are.
//  - AllReduceInBuckets: tensors summed (then scaled) over a group in buckets of `bucket_bytes`,
//    each bucket one all-reduce of a flat staging buffer. The DP gradient average is scale 1/dp;
//    the TP sum of replicated parameters' partial gradients is scale 1.
//  - Zero1Partition: ZeRO stage 1. The concatenation of all tensors (in the given order) is split
//    into dp equal contiguous shards (the last padded); a rank reduce-scatters the gradients to get
//    its shard, updates only that shard (so it keeps optimizer state, and under mixed precision
//    the fp32 masters, only for it), and all-gathers the parameters' values afterwards (bf16 under
//    mixed precision: half the bytes of gathering the masters).
#pragma once

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace lrkv {

// tensors[i] = scale * (sum over the group of tensors[i]). All tensors share one dtype and device.
absl::Status AllReduceInBuckets(Communicator& group, const std::vector<Tensor*>& tensors, int64_t bucket_bytes,
                                double scale);

class Zero1Partition {
 public:
  // `tensors` are the parameters (or their gradients: same shapes, same order).
  static absl::StatusOr<Zero1Partition> Create(const std::vector<Tensor*>& tensors, int dp_size, int dp_rank);

  // One piece of this rank's shard: elements [begin, end) of tensor `index` (flat).
  struct Piece {
    int index;
    int64_t begin, end;
  };
  const std::vector<Piece>& pieces() const { return pieces_; }
  int64_t shard_elements() const { return shard_; }

  // Gradients summed over the group and divided by dp, this rank's shard only (other elements of
  // `grads` are left unspecified).
  absl::Status ReduceScatterGradients(Communicator& dp, const std::vector<Tensor*>& grads) const;
  // Every rank's updated shard of `params` (of any one dtype: the values, or fp32 masters for a
  // dump), gathered into all ranks' full tensors.
  absl::Status AllGatherParameters(Communicator& dp, const std::vector<Tensor*>& params) const;

 private:
  absl::Status Pack(const std::vector<Tensor*>& ts, Tensor& flat) const;
  absl::Status Unpack(const Tensor& flat, const std::vector<Tensor*>& ts, bool own_shard_only) const;

  std::vector<int64_t> offsets_;  // flat offset of each tensor
  int64_t total_ = 0, shard_ = 0;
  int dp_size_ = 1, dp_rank_ = 0;
  std::vector<Piece> pieces_;
};

}  // namespace lrkv
