#include "model/parameter.h"

#include <cmath>
#include <type_traits>
#include <vector>

#include "runtime/hash.h"
#include "runtime/ops/cast.h"
#include "runtime/ops/gemm.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/packed_linear.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

}  // namespace

double InitNormal(uint64_t seed, const std::string& name, int64_t index) {
  const uint64_t h = HashCombine(HashCombine(seed, Fnv1a(name)), static_cast<uint64_t>(index));
  const double u1 = (static_cast<double>(h >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(SplitMix64(h) >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

ParameterSpec ColumnParallelWeight(std::string name, int64_t in, int64_t out, double std) {
  return {std::move(name), {in, out}, InitKind::kNormal, std, ParamRole::kWeight, TpSplit::kSplit, 1};
}
ParameterSpec RowParallelWeight(std::string name, int64_t in, int64_t out, double std) {
  return {std::move(name), {in, out}, InitKind::kNormal, std, ParamRole::kWeight, TpSplit::kSplit, 0};
}
ParameterSpec ReplicatedWeight(std::string name, Shape shape, double std) {
  return {std::move(name), std::move(shape), InitKind::kNormal, std, ParamRole::kWeight,
          TpSplit::kReplicatedPartialGrad};
}

int64_t GlobalIndex(const Shape& global, const LocalBlock& block, int64_t local_index) {
  if (block.dim < 0) return local_index;
  // (outer, along, inner) view of the shape around the split dimension.
  int64_t inner = 1;
  for (size_t i = block.dim + 1; i < global.size(); ++i) inner *= global[i];
  const int64_t local_along = block.shape[block.dim], global_along = global[block.dim];
  const int64_t outer = local_index / (local_along * inner);
  const int64_t along = local_index / inner % local_along;
  return (outer * global_along + block.offset + along) * inner + local_index % inner;
}

absl::StatusOr<Tensor> MasterElements(const Parameter& p, int64_t begin, int64_t end) {
  LRKV_REQUIRE(p.master_begin <= begin && begin <= end && end <= p.master_end, "parameter ", p.spec.name,
               ": master elements [", begin, ", ", end, ") outside the range this rank holds [", p.master_begin, ", ",
               p.master_end, ")");
  LRKV_TRY_ASSIGN(const Tensor flat, p.master.View({p.master.numel()}));
  return flat.Slice(begin - p.master_begin, end - p.master_begin);
}

absl::StatusOr<Parameter*> ParameterSet::Add(ParameterSpec spec) {
  LRKV_REQUIRE(Find(spec.name) == nullptr, "duplicate parameter name ", spec.name);
  auto p = std::make_unique<Parameter>();
  p->block.shape = spec.shape;
  if (spec.tp == TpSplit::kSplit && tp_.size > 1) {
    LRKV_REQUIRE(spec.split_dim >= 0 && spec.split_dim < static_cast<int>(spec.shape.size()),
                 "parameter ", spec.name, ": split dimension ", spec.split_dim, " outside ", ShapeString(spec.shape));
    const int64_t extent = spec.shape[spec.split_dim];
    LRKV_REQUIRE(extent % tp_.size == 0, "parameter ", spec.name, " ", ShapeString(spec.shape), ": dimension ",
                 spec.split_dim, " (", extent, ") is not divisible by the tensor-parallel size ", tp_.size);
    p->block.dim = spec.split_dim;
    p->block.shape[spec.split_dim] = extent / tp_.size;
    p->block.offset = extent / tp_.size * tp_.index;
  }
  LRKV_TRY_ASSIGN(p->master, Tensor::Empty(p->block.shape, master_dtype(), device_));
  p->master_end = p->master.numel();
  p->value = p->master;
  if (mixed_precision()) {
    LRKV_TRY_ASSIGN(p->value, Tensor::Empty(p->block.shape, dtype_, device_));
  }
  LRKV_TRY_ASSIGN(p->grad, Tensor::Zeros(p->block.shape, master_dtype(), device_));
  p->packs = pack_weights_;
  p->spec = std::move(spec);
  params_.push_back(std::move(p));
  return params_.back().get();
}

absl::Status ParameterSet::ShardMasters(const std::vector<MasterRange>& ranges) {
  LRKV_REQUIRE(mixed_precision(), "sharded masters need mixed precision (in ", DTypeName(dtype_),
               " the masters are the values)");
  LRKV_REQUIRE(ranges.size() == params_.size(), "ShardMasters: ", ranges.size(), " ranges for ", params_.size(),
               " parameters");
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    const MasterRange r = ranges[i];
    LRKV_REQUIRE(0 <= r.begin && r.begin <= r.end && r.end <= p.value.numel(), "parameter ", p.spec.name,
                 ": master range [", r.begin, ", ", r.end, ") outside its ", p.value.numel(), " elements");
    p.master = Tensor();  // the whole one, freed before its shard is allocated
    if (r.begin < r.end) {
      LRKV_TRY_ASSIGN(p.master, Tensor::Empty({r.end - r.begin}, master_dtype(), device_));
    }
    p.master_begin = r.begin, p.master_end = r.end;
  }
  masters_sharded_ = true;
  return absl::OkStatus();
}

absl::Status ParameterSet::Initialize(uint64_t seed) {
  for (auto& p : params_) p->packed = Tensor();  // of the old values
  for (auto& p : params_) {
    // Whole host masters (fp32 or fp64) are written in place; device or sharded ones through a
    // host copy of the whole block, fp64 for a device (whose blocks the caller's allocators may
    // then release).
    const bool in_place = device_ == Device::kCpu && !masters_sharded_;
    Tensor host = p->master;
    if (!in_place) {
      LRKV_TRY_ASSIGN(host, Tensor::Empty(p->block.shape, device_ == Device::kCpu ? master_dtype() : DType::kF64));
    }
    const int64_t n = host.numel();
    auto write = [&](auto* out) {
#pragma omp parallel for
      for (int64_t i = 0; i < n; ++i) {
        double v = 0;
        switch (p->spec.init) {
          case InitKind::kNormal:
            v = p->spec.std * InitNormal(seed, p->spec.name, GlobalIndex(p->spec.shape, p->block, i));
            break;
          case InitKind::kOnes: v = 1.0; break;
          case InitKind::kZeros: v = 0.0; break;
        }
        out[i] = static_cast<std::remove_pointer_t<decltype(out)>>(v);
      }
    };
    if (host.dtype() == DType::kF32) {
      write(host.data<float>());
    } else {
      write(host.data<double>());
    }
    if (in_place) continue;
    Tensor whole = host;  // (block.shape) the block's masters, where they live
    if (device_ != Device::kCpu) {
      LRKV_TRY_ASSIGN(whole, host.To(device_, master_dtype()));
    }
    if (!masters_sharded_) {
      LRKV_TRY(p->master.CopyFrom(whole));
      continue;
    }
    // Sharded: the whole value from the whole block, the master of the range held.
    LRKV_TRY(Cast(whole, p->value));
    if (p->master_begin == p->master_end) continue;
    LRKV_TRY_ASSIGN(const Tensor flat, whole.View({whole.numel()}));
    LRKV_TRY_ASSIGN(const Tensor range, flat.Slice(p->master_begin, p->master_end));
    LRKV_TRY(p->master.CopyFrom(range));
  }
  return masters_sharded_ ? absl::OkStatus() : RefreshValues();
}

void ParameterSet::set_pack_weights(bool pack) {
  pack_weights_ = pack;
  for (auto& p : params_) p->packs = pack, p->packed = Tensor();
}

absl::Status ParameterSet::RefreshValues() {
  for (auto& p : params_) p->packed = Tensor();  // of the old values
  if (!mixed_precision()) return absl::OkStatus();
  for (auto& p : params_) {  // the values of the range each master holds: all of it unless sharded
    if (p->master_begin == p->master_end) continue;
    LRKV_TRY_ASSIGN(const Tensor master, MasterElements(*p, p->master_begin, p->master_end));
    LRKV_TRY_ASSIGN(const Tensor flat, p->value.View({p->value.numel()}));
    LRKV_TRY_ASSIGN(Tensor range, flat.Slice(p->master_begin, p->master_end));
    LRKV_TRY(Cast(master, range));
  }
  return absl::OkStatus();
}

absl::Status ParameterSet::ZeroGrads() {
  for (auto& p : params_) LRKV_TRY(p->grad.SetZero());
  return absl::OkStatus();
}

Parameter* ParameterSet::Find(const std::string& name) const {
  for (const auto& p : params_)
    if (p->spec.name == name) return p.get();
  return nullptr;
}

int64_t ParameterSet::NumElements() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p->value.numel();
  return n;
}

namespace {
// Whether x times w (stored (in, out), or transposed (out, in)) goes through w's packed copy, which
// it then makes if w has none yet. A parameter is multiplied one way round only (the LM head
// transposed, every other weight as stored), so its one copy is of that orientation.
absl::StatusOr<bool> UsePacked(const Tensor& x, Parameter& w, bool transposed) {
  const int64_t in = w.value.rank() == 2 ? w.value.dim(transposed ? 1 : 0) : 0;
  const int64_t rows = in > 0 ? x.numel() / in : 0;
  if (!w.packs || !PackedLinearSuits(w.value.device(), w.value.dtype(), rows)) return false;
  if (!w.packed.defined()) {
    LRKV_TRY_ASSIGN(w.packed, PackLinearWeight(w.value, transposed));
  }
  return true;
}
}  // namespace

absl::Status LinearForward(const Tensor& x, Parameter& w, Tensor& y, FlopCategory category) {
  LRKV_TRY_ASSIGN(const bool packed, UsePacked(x, w, /*transposed=*/false));
  return packed ? PackedLinearForward(x, w.packed, y, category) : LinearForward(x, w.value, y, category);
}

absl::Status LinearForwardTransposed(const Tensor& x, Parameter& w, Tensor& y, FlopCategory category) {
  LRKV_TRY_ASSIGN(const bool packed, UsePacked(x, w, /*transposed=*/true));
  if (packed) return PackedLinearForward(x, w.packed, y, category);
  LRKV_REQUIRE(w.value.rank() == 2 && x.numel() % w.value.dim(1) == 0, "LinearForwardTransposed: input ",
               x.DebugString(), " does not match weight (out, in) ", w.value.DebugString());
  const int64_t out = w.value.dim(0), in = w.value.dim(1);
  return Gemm(x, w.value, y, GemmArgs::Dense(x.numel() / in, out, in, false, /*trans_b=*/true), category);
}

}  // namespace lrkv
