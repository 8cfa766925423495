#include "parallel/data_parallel.h"

#include <algorithm>

#include "runtime/ops/optimizer_ops.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

// Copies elements [begin, begin + n) of `t` (flat) to or from `flat` at `at`, on any device (a
// device-to-device copy where both live on one).
absl::Status CopyElements(const Tensor& t, int64_t begin, int64_t n, const Tensor& flat, int64_t at, bool to_flat) {
  LRKV_TRY_ASSIGN(const Tensor whole, t.View({t.numel()}));
  LRKV_TRY_ASSIGN(Tensor part, whole.Slice(begin, begin + n));
  LRKV_TRY_ASSIGN(Tensor there, flat.Slice(at, at + n));
  return to_flat ? there.CopyFrom(part) : part.CopyFrom(there);
}

}  // namespace

absl::Status AllReduceInBuckets(Communicator& group, const std::vector<Tensor*>& grads, int64_t bucket_bytes,
                                double scale) {
  if (group.size() == 1 || grads.empty()) return absl::OkStatus();
  const DType dtype = grads.front()->dtype();
  const int64_t bucket_elements = std::max<int64_t>(1, bucket_bytes / DTypeSize(dtype));
  size_t i = 0;
  while (i < grads.size()) {
    // A bucket: consecutive tensors up to bucket_elements (a larger tensor goes alone).
    size_t j = i;
    int64_t n = 0;
    while (j < grads.size() && (j == i || n + grads[j]->numel() <= bucket_elements)) n += grads[j++]->numel();
    LRKV_TRY_ASSIGN(Tensor flat, Tensor::Empty({n}, dtype, grads[i]->device()));
    int64_t at = 0;
    for (size_t k = i; k < j; ++k) {
      LRKV_TRY(CopyElements(*grads[k], 0, grads[k]->numel(), flat, at, true));
      at += grads[k]->numel();
    }
    LRKV_TRY(group.AllReduce(flat));
    if (scale != 1.0) LRKV_TRY(Scale(flat, scale));
    at = 0;
    for (size_t k = i; k < j; ++k) {
      LRKV_TRY(CopyElements(*grads[k], 0, grads[k]->numel(), flat, at, false));
      at += grads[k]->numel();
    }
    i = j;
  }
  return absl::OkStatus();
}

absl::StatusOr<Zero1Partition> Zero1Partition::Create(const std::vector<Tensor*>& tensors, int dp_size, int dp_rank) {
  Zero1Partition z;
  z.dp_size_ = dp_size, z.dp_rank_ = dp_rank;
  for (const Tensor* t : tensors) {
    z.offsets_.push_back(z.total_);
    z.total_ += t->numel();
  }
  z.shard_ = (z.total_ + dp_size - 1) / dp_size;
  const int64_t lo = dp_rank * z.shard_, hi = std::min(z.total_, lo + z.shard_);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t b = std::max(lo, z.offsets_[i]), e = std::min(hi, z.offsets_[i] + tensors[i]->numel());
    if (b < e) z.pieces_.push_back({static_cast<int>(i), b - z.offsets_[i], e - z.offsets_[i]});
  }
  return z;
}

absl::Status Zero1Partition::Pack(const std::vector<Tensor*>& ts, Tensor& flat) const {
  LRKV_TRY_ASSIGN(flat, Tensor::Zeros({shard_ * dp_size_}, ts.front()->dtype(), ts.front()->device()));
  for (size_t i = 0; i < ts.size(); ++i) LRKV_TRY(CopyElements(*ts[i], 0, ts[i]->numel(), flat, offsets_[i], true));
  return absl::OkStatus();
}

absl::Status Zero1Partition::Unpack(const Tensor& flat, const std::vector<Tensor*>& ts, bool own_shard_only) const {
  if (own_shard_only) {
    // `flat` holds just this rank's shard.
    for (const Piece& p : pieces_) {
      LRKV_TRY(CopyElements(*ts[p.index], p.begin, p.end - p.begin, flat,
                            offsets_[p.index] + p.begin - dp_rank_ * shard_, false));
    }
    return absl::OkStatus();
  }
  for (size_t i = 0; i < ts.size(); ++i) LRKV_TRY(CopyElements(*ts[i], 0, ts[i]->numel(), flat, offsets_[i], false));
  return absl::OkStatus();
}

absl::Status Zero1Partition::ReduceScatterGradients(Communicator& dp, const std::vector<Tensor*>& grads) const {
  Tensor flat;
  LRKV_TRY(Pack(grads, flat));
  LRKV_TRY_ASSIGN(Tensor shard, Tensor::Empty({shard_}, flat.dtype(), flat.device()));
  LRKV_TRY(dp.ReduceScatter(flat, shard));
  LRKV_TRY(Scale(shard, 1.0 / dp_size_));
  return Unpack(shard, grads, /*own_shard_only=*/true);
}

absl::Status Zero1Partition::AllGatherParameters(Communicator& dp, const std::vector<Tensor*>& params) const {
  Tensor flat;
  LRKV_TRY(Pack(params, flat));
  LRKV_TRY_ASSIGN(Tensor shard, flat.Slice(dp_rank_ * shard_, (dp_rank_ + 1) * shard_));
  LRKV_TRY_ASSIGN(Tensor mine, Tensor::Empty({shard_}, flat.dtype(), flat.device()));
  LRKV_TRY(mine.CopyFrom(shard));
  LRKV_TRY(dp.AllGather(mine, flat));
  return Unpack(flat, params, /*own_shard_only=*/false);
}

}  // namespace lrkv
