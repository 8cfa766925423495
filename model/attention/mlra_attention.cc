#include "model/attention/mlra_attention.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "model/attention/variant_registry.h"
#include "model/config.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/gemm.h"
#include "runtime/ops/head_slice.h"
#include "runtime/ops/latent_decode_attention.h"
#include "runtime/ops/linear.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
constexpr FlopCategory kCat = FlopCategory::kAttentionProjection;

// A row-major matrix inside a tensor: element (i, j) at offset + i * ld + j. The up-projections
// read and write column blocks (some heads of one branch) of wider matrices in place.
struct Within {
  const Tensor& t;
  int64_t offset, ld;
};

absl::StatusOr<Tensor> From(const Tensor& t, int64_t offset) {
  LRKV_TRY_ASSIGN(Tensor flat, t.View({t.numel()}));
  return flat.Slice(offset, t.numel());
}

// The `shape`d run of elements of t starting at `offset`.
absl::StatusOr<Tensor> Part(const Tensor& t, int64_t offset, const Shape& shape) {
  LRKV_TRY_ASSIGN(Tensor flat, t.View({t.numel()}));
  LRKV_TRY_ASSIGN(flat, flat.Slice(offset, offset + NumElements(shape)));
  return flat.View(shape);
}

// A GEMM batched over `heads` heads: per head j, c_j = alpha op(a_j) op(b_j), each operand's head j
// `stride` elements after head 0; a, b, c from the given element offsets.
absl::Status GemmPerHead(const Tensor& a, int64_t a_offset, int64_t a_stride, const Tensor& b, int64_t b_offset,
                         int64_t ldb, int64_t b_stride, bool trans_b, const Tensor& c, int64_t c_offset,
                         int64_t c_stride, int64_t heads, int64_t n, int64_t k, double alpha) {
  GemmArgs g;
  g.m = 1, g.n = n, g.k = k, g.trans_b = trans_b, g.alpha = alpha;
  g.lda = k, g.ldb = ldb, g.ldc = n;
  g.batch = heads, g.stride_a = a_stride, g.stride_b = b_stride, g.stride_c = c_stride;
  LRKV_TRY_ASSIGN(const Tensor ta, From(a, a_offset));
  LRKV_TRY_ASSIGN(const Tensor tb, From(b, b_offset));
  LRKV_TRY_ASSIGN(Tensor tc, From(c, c_offset));
  return Gemm(ta, tb, tc, g, kCat);
}

// c = alpha op(a) op(b) + beta c; op(a) (m, k), op(b) (k, n).
absl::Status GemmWithin(const Within& a, bool trans_a, const Within& b, bool trans_b, const Within& c, int64_t m,
                        int64_t n, int64_t k, double alpha, double beta) {
  GemmArgs g;
  g.m = m, g.n = n, g.k = k, g.trans_a = trans_a, g.trans_b = trans_b;
  g.lda = a.ld, g.ldb = b.ld, g.ldc = c.ld, g.alpha = alpha, g.beta = beta;
  LRKV_TRY_ASSIGN(const Tensor ta, From(a.t, a.offset));
  LRKV_TRY_ASSIGN(const Tensor tb, From(b.t, b.offset));
  LRKV_TRY_ASSIGN(Tensor tc, From(c.t, c.offset));
  return Gemm(ta, tb, tc, g, kCat);
}

struct Widths {
  int64_t blocks, groups, branches, block_width;
};
Widths WidthsOf(const ModelConfig& c) {
  const MlraConfig& m = c.mlra();
  const int64_t groups = c.n_heads() / m.heads_per_block_group();
  return {m.blocks(), groups, m.blocks() / groups, m.kv_lora_rank() / m.blocks()};
}

}  // namespace

absl::StatusOr<std::unique_ptr<AttentionVariant>> MlraAttention::Create(const ModelConfig& c, const std::string& prefix,
                                                                        ParameterSet& params) {
  auto a = std::make_unique<MlraAttention>();
  const MlraConfig& m = c.mlra();
  const Widths w = WidthsOf(c);
  const int64_t d = c.d_model(), h = c.n_heads(), dn = m.nope_dim(), dr = m.rope_dim(), dv = m.v_dim();
  const TpRank tp = params.tp();
  // Decoding at tp dividing the blocks partitions by block: this rank's blocks for every head.
  const bool by_block = tp.decoding && tp.size > 1 && tp.size <= w.blocks && w.blocks % tp.size == 0;
  const int64_t first_block = by_block ? tp.index * (w.blocks / tp.size) : 0;
  const int64_t end_block = by_block ? first_block + w.blocks / tp.size : w.blocks;
  // The branches this rank computes (slots of the core): those its blocks are.
  const int64_t first_branch = first_block / w.groups, slots = (end_block - 1) / w.groups - first_branch + 1;
  a->heads_ = by_block ? h : h / tp.size;
  a->dims_ = {slots * a->heads_, slots * a->heads_, dn + dr, dv, dr};
  a->dims_.branches = slots;
  a->kv_rank_ = m.kv_lora_rank();
  a->qk_norm_ = c.qk_norm();
  a->norm_eps_ = c.norm_eps();
  a->kv_values_per_token_ = m.kv_lora_rank() + dr + (c.qk_norm() ? w.blocks * m.heads_per_block_group() : 0);
  a->nope_dim_ = dn;
  a->block_width_ = w.block_width;
  a->k_scale_ = std::sqrt(double(d) / double(w.block_width));
  a->v_scale_ = a->k_scale_ / std::sqrt(double(w.branches));
  LRKV_TRY_ASSIGN(a->query_, LatentQuery::Create(c, prefix, params, dn + dr, m.q_lora_rank(), /*whole=*/by_block));
  for (int64_t b = first_block; b < end_block; ++b) {
    LRKV_TRY_ASSIGN(LatentProjection block,
                    LatentProjection::Create(params, prefix, absl::StrCat("wkv_down.", b),
                                             absl::StrCat("kv_norm.", b, ".weight"), d, w.block_width, c.norm_eps()));
    a->blocks_.push_back(block);
  }
  // Split by head (dimension 2): this rank's columns of every branch (whole when by block).
  auto up = [&](const char* name, int64_t width) {
    return params.Add({prefix + name, {w.branches, w.block_width, h * width}, InitKind::kNormal,
                       LinearInitStd(w.block_width), ParamRole::kWeight,
                       by_block ? TpSplit::kReplicatedPartialGrad : TpSplit::kSplit, 2});
  };
  LRKV_TRY_ASSIGN(a->wk_up_, up("wk_up", dn));
  LRKV_TRY_ASSIGN(a->wv_up_, up("wv_up", dv));
  LRKV_TRY_ASSIGN(a->wk_rope_, params.Add(ReplicatedWeight(prefix + "wk_rope", {d, dr}, LinearInitStd(d))));
  // Block a G + g is branch a of the heads of group g; this rank holds heads [h0, h0 + heads_).
  const int64_t h0 = by_block ? 0 : tp.index * a->heads_, per_group = m.heads_per_block_group();
  for (int64_t b = first_block; b < end_block; ++b) {
    const int64_t g = b % w.groups;
    const int64_t first = std::max(g * per_group, h0), end = std::min((g + 1) * per_group, h0 + a->heads_);
    a->readers_.push_back({b - first_block, b / w.groups, b / w.groups - first_branch, std::min(first, end) - h0,
                           end - h0, 0});
  }
  int64_t read = 0;
  for (Reader& r : a->readers_) {
    r.scales = read;
    read += r.end - r.first;
  }
  a->every_slot_read_ = read == slots * a->heads_;
  a->scale_width_ = c.qk_norm() ? read : 0;
  // Decoding's kernel calls: the readers of the same heads together, in block order.
  for (const Reader& r : a->readers_) {
    if (r.first == r.end) continue;
    auto same = std::find_if(a->reader_groups_.begin(), a->reader_groups_.end(), [&](const std::vector<Reader>& g) {
      return g[0].first == r.first && g[0].end == r.end;
    });
    if (same == a->reader_groups_.end()) {
      a->reader_groups_.push_back({r});
    } else {
      same->push_back(r);
    }
  }
  return std::unique_ptr<AttentionVariant>(std::move(a));
}

absl::Status MlraAttention::Forward(const Tensor& x, Tensor& q, Tensor& k, Tensor& v,
                                    std::unique_ptr<VariantSaved>& saved) {
  const int64_t n = x.numel() / x.dim(-1);
  auto s = std::make_unique<MlraSaved>();
  LRKV_TRY(QueriesOf(x, q, s->q));
  s->blocks.resize(blocks_.size());
  std::vector<Tensor> latents;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    LRKV_TRY(blocks_[b].Forward(x, s->blocks[b]));
    latents.push_back(s->blocks[b].latent);
  }
  LRKV_TRY_ASSIGN(Tensor k_rope, Tensor::Empty({n, 1, dims_.rope_dims}, x.dtype(), x.device()));
  LRKV_TRY(LinearForward(x, *wk_rope_, k_rope, kCat));
  LRKV_TRY(KeysValuesOf(latents, k_rope, k, v));
  saved = std::move(s);
  return absl::OkStatus();
}

// Queries (N, 1, H dqk), repeated for every branch: q (N, A, H dqk).
absl::Status MlraAttention::QueriesOf(const Tensor& x, Tensor& q, LatentSaved& saved) {
  const int64_t n = x.numel() / x.dim(-1), width = heads_ * dims_.qk_dim;
  LRKV_TRY_ASSIGN(Tensor q_heads, Tensor::Empty({n, 1, width}, x.dtype(), x.device()));
  LRKV_TRY(query_.Forward(x, q_heads, saved));
  LRKV_TRY_ASSIGN(Tensor q_branches, q.View({n, dims_.branches, width}));
  return CopyToHeadSlice(q_heads, 0, q_branches);
}

// Keys per (branch, head) (N, A, H, d_n + d_R): [k_nope; the one RoPE key (N, 1, d_R)], each block's
// readers' k_nope from its latent (N, d_b); zero NoPE parts for heads without a block here.
absl::Status MlraAttention::KeysOf(const std::vector<Tensor>& latents, const Tensor& k_rope, Tensor& k) {
  const int64_t n = k_rope.numel() / dims_.rope_dims, hl = heads_, nb = dims_.branches, dn = nope_dim_;
  const int64_t db = block_width_;
  LRKV_TRY_ASSIGN(Tensor k_nope, Tensor::Empty({n, nb * hl, dn}, k.dtype(), k.device()));
  if (!every_slot_read_) LRKV_TRY(k_nope.SetZero());
  for (const Reader& r : readers_) {
    if (r.first == r.end) continue;
    LRKV_TRY(GemmWithin({latents[r.block], 0, db}, false,
                        {wk_up_->value, (r.branch * db * hl + r.first) * dn, hl * dn}, false,
                        {k_nope, (r.slot * hl + r.first) * dn, nb * hl * dn}, n, (r.end - r.first) * dn, db,
                        k_scale_, 0.0));
  }
  LRKV_TRY_ASSIGN(Tensor heads, k.View({n, nb * hl, dims_.qk_dim}));
  LRKV_TRY_ASSIGN(const Tensor rope_row, k_rope.View({n, 1, dims_.rope_dims}));
  LRKV_TRY(CopyToHeadSlice(k_nope, 0, heads));
  return CopyToHeadSlice(rope_row, dn, heads);
}

// Keys as KeysOf; values (N, A, H, d_v), zero for a head without a block here (it attends to nothing).
absl::Status MlraAttention::KeysValuesOf(const std::vector<Tensor>& latents, const Tensor& k_rope, Tensor& k,
                                         Tensor& v) {
  LRKV_TRY(KeysOf(latents, k_rope, k));
  const int64_t n = k_rope.numel() / dims_.rope_dims, hl = heads_, nb = dims_.branches, dv = dims_.v_dim;
  const int64_t db = block_width_;
  if (!every_slot_read_) LRKV_TRY(v.SetZero());
  for (const Reader& r : readers_) {
    if (r.first == r.end) continue;
    LRKV_TRY(GemmWithin({latents[r.block], 0, db}, false,
                        {wv_up_->value, (r.branch * db * hl + r.first) * dv, hl * dv}, false,
                        {v, (r.slot * hl + r.first) * dv, nb * hl * dv}, n, (r.end - r.first) * dv, db, v_scale_,
                        0.0));
  }
  return absl::OkStatus();
}

// Cached: every latent block of this rank (normed, before the alpha scale); under QK-norm one part
// with every reader's key scales (Reader::scales); the RoPE key, last, rotated at its position by
// the layer (AbsorbsDecoding).
std::vector<int64_t> MlraAttention::CacheParts() const {
  std::vector<int64_t> parts(blocks_.size(), block_width_);
  if (scale_width_ > 0) parts.push_back(scale_width_);
  parts.push_back(dims_.rope_dims);
  return parts;
}

absl::Status MlraAttention::Queries(const Tensor& x, Tensor& q) {
  LatentSaved unused;
  return QueriesOf(x, q, unused);
}

absl::Status MlraAttention::CacheRows(const Tensor& x, std::vector<Tensor>& rows) {
  rows.clear();
  for (const LatentProjection& block : blocks_) {
    LatentSaved s;
    LRKV_TRY(block.Forward(x, s));
    LRKV_TRY_ASSIGN(Tensor latent, s.latent.View({x.dim(0), x.dim(1), block_width_}));
    rows.push_back(latent);
  }
  LRKV_TRY_ASSIGN(Tensor k_rope, Tensor::Empty({x.dim(0), x.dim(1), dims_.rope_dims}, x.dtype(), x.device()));
  LRKV_TRY(LinearForward(x, *wk_rope_, k_rope, kCat));
  if (scale_width_ > 0) {
    LRKV_TRY_ASSIGN(Tensor scales, KeyScalesOf(rows, k_rope));
    rows.push_back(scales);
  }
  rows.push_back(k_rope);
  return absl::OkStatus();
}

// Every reader's keys' 1 / rms, gathered from the core's (slot, head) keys into the scales part.
//   latents: one (B, T, d_b) per block; k_rope (B, T, d_R) -> (B, T, scale_width_)
absl::StatusOr<Tensor> MlraAttention::KeyScalesOf(const std::vector<Tensor>& latents, const Tensor& k_rope) {
  const int64_t n = k_rope.numel() / dims_.rope_dims, core = dims_.branches * heads_;
  LRKV_TRY_ASSIGN(Tensor k, Tensor::Empty({n, core, dims_.qk_dim}, k_rope.dtype(), k_rope.device()));
  LRKV_TRY(KeysOf(latents, k_rope, k));
  LRKV_TRY_ASSIGN(Tensor all, KeyScales(k, norm_eps_));
  LRKV_TRY_ASSIGN(all, all.View({n, 1, core}));  // (N, 1, A H): a head slice is a run of columns
  LRKV_TRY_ASSIGN(Tensor scales, Tensor::Empty({n, 1, scale_width_}, k_rope.dtype(), k_rope.device()));
  for (const Reader& r : readers_) {
    if (r.first == r.end) continue;
    LRKV_TRY_ASSIGN(Tensor run, Tensor::Empty({n, 1, r.end - r.first}, k_rope.dtype(), k_rope.device()));
    LRKV_TRY(ReduceFromHeadSlice(all, r.slot * heads_ + r.first, run));  // one source head: a copy
    LRKV_TRY(CopyToHeadSlice(run, r.scales, scales));
  }
  return scales.View({k_rope.dim(0), k_rope.dim(1), scale_width_});
}

absl::Status MlraAttention::KeysValues(const std::vector<Tensor>& parts, Tensor& k, Tensor& v) {
  return KeysValuesOf(std::vector<Tensor>(parts.begin(), parts.begin() + blocks_.size()), parts.back(), k, v);
}

// The blocks read by the same heads in one kernel call (reader_groups_), which scores their shared
// RoPE key once (MLRA-4: every block; MLRA-2: two calls of two). Per block: its keys [c_b; the rotated RoPE key],
// read in place from the cache (with their cached 1 / rms under QK-norm), its readers' queries
// mapped into the block, and the outputs mapped back into the readers' branch slot.
absl::Status MlraAttention::DecodeAbsorbed(const Tensor& q, const std::vector<Tensor>& past, double scale,
                                           Tensor& o) {
  const int64_t len = past[0].dim(1), hl = heads_, dq = dims_.qk_dim;
  const int64_t dn = nope_dim_, dr = dims_.rope_dims, dv = dims_.v_dim, db = block_width_;
  const DType dt = q.dtype();
  const Device dev = q.device();
  if (!every_slot_read_) LRKV_TRY(o.SetZero());  // a head without a block here gets nothing
  LRKV_TRY_ASSIGN(const Tensor rope, past.back().View({len, dr}));  // shared by the blocks, read in place
  Tensor scales;                                                       // (len, readers' heads) under QK-norm
  if (scale_width_ > 0) {
    LRKV_TRY_ASSIGN(scales, past[blocks_.size()].View({len, scale_width_}));
  }
  for (const std::vector<Reader>& group : reader_groups_) {
    const int64_t first = group[0].first, heads = group[0].end - first;
    const int64_t nb = static_cast<int64_t>(group.size()), w = nb * db + dr;
    LRKV_TRY_ASSIGN(Tensor q_abs, Tensor::Empty({1, 1, heads, w}, dt, dev));
    LRKV_TRY_ASSIGN(Tensor o_abs, Tensor::Empty({1, 1, heads, nb * db}, dt, dev));
    LRKV_TRY_ASSIGN(Tensor lse, Tensor::Empty({1, heads, nb}, AccumDType(dt), dev));
    std::vector<Tensor> latents;
    std::vector<int64_t> scale_columns;
    for (int64_t b = 0; b < nb; ++b) {
      const Reader& r = group[b];
      const int64_t head0 = r.slot * hl + first, up_k = (r.branch * db * hl + first) * dn;
      LRKV_TRY(GemmPerHead(q, head0 * dq, dq, wk_up_->value, up_k, hl * dn, dn, /*trans_b=*/true, q_abs, b * db, w,
                           heads, db, dn, k_scale_));
      LRKV_TRY_ASSIGN(Tensor latent, past[r.block].View({len, db}));
      latents.push_back(std::move(latent));
      scale_columns.push_back(r.scales);
    }
    // The RoPE query, the same in every branch slot (queries are repeated per branch): the first's.
    LRKV_TRY_ASSIGN(Tensor q_rope, Tensor::Empty({1, heads, dr}, dt, dev));
    LRKV_TRY_ASSIGN(const Tensor q_heads, Part(q, (group[0].slot * hl + first) * dq, {1, heads, dq}));
    LRKV_TRY(ReduceFromHeadSlice(q_heads, dn, q_rope));  // one source head per head: a copy
    LRKV_TRY_ASSIGN(Tensor q_abs_heads, q_abs.View({1, heads, w}));
    LRKV_TRY(CopyToHeadSlice(q_rope, nb * db, q_abs_heads));
    LRKV_TRY(LatentDecodeAttention(q_abs, latents, rope, scale_width_ > 0 ? &scales : nullptr, scale_columns, scale,
                                   o_abs, lse));
    for (int64_t b = 0; b < nb; ++b) {
      const Reader& r = group[b];
      const int64_t up_v = (r.branch * db * hl + first) * dv;
      LRKV_TRY(GemmPerHead(o_abs, b * db, nb * db, wv_up_->value, up_v, hl * dv, dv, /*trans_b=*/false, o,
                           (r.slot * hl + first) * dv, dv, heads, dv, db, v_scale_));
    }
  }
  return absl::OkStatus();
}

// Core head (slot, i): the query q_i; the key [alpha latent_b(x) W_UK[a]_i ; x W_KR] of the block b
// that slot's branch a reads for head i. A slot without a block here has no key (zero).
absl::StatusOr<HeadMaps> MlraAttention::QueryKeyMaps() const {
  const int64_t dn = nope_dim_, dr = dims_.rope_dims, hl = heads_, db = block_width_;
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd wq, query_.Map());
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd up, ParameterMatrix(*wk_up_, wk_up_->value.dim(0) * db));  // (A d_b, H d_n)
  LRKV_TRY_ASSIGN(const Eigen::MatrixXd rope, ParameterMatrix(*wk_rope_, wk_rope_->value.dim(0)));
  HeadMaps m;
  m.wq.resize(dims_.heads);
  m.wk.assign(dims_.heads, Eigen::MatrixXd::Zero(rope.rows(), dn + dr));
  for (int64_t slot = 0; slot < dims_.branches; ++slot) {
    for (int64_t i = 0; i < hl; ++i) m.wq[slot * hl + i] = HeadColumns(wq, i, dn + dr);
  }
  for (const Reader& r : readers_) {
    LRKV_TRY_ASSIGN(const Eigen::MatrixXd latent, blocks_[r.block].Map());
    for (int64_t i = r.first; i < r.end; ++i) {
      Eigen::MatrixXd& k = m.wk[r.slot * hl + i];
      k.leftCols(dn) = k_scale_ * latent * up.block(r.branch * db, i * dn, db, dn);
      k.rightCols(dr) = rope;
    }
  }
  return m;
}

absl::Status MlraAttention::Backward(const Tensor& x, const VariantSaved* saved, const Tensor& dq, const Tensor& dk,
                                     const Tensor& dv, Tensor& dx) {
  const auto& s = static_cast<const MlraSaved&>(*saved);
  const int64_t n = x.numel() / x.dim(-1), hl = heads_, nb = dims_.branches, dn = nope_dim_;
  const int64_t dqk = dims_.qk_dim, dvw = dims_.v_dim, dr = dims_.rope_dims, db = block_width_;
  const DType dt = x.dtype();
  const Device dev = x.device();
  // The query's gradient sums over its branches; its path writes dx first.
  LRKV_TRY_ASSIGN(Tensor dq_branches, dq.View({n, nb, hl * dqk}));
  LRKV_TRY_ASSIGN(Tensor dq_heads, Tensor::Empty({n, 1, hl * dqk}, dt, dev));
  LRKV_TRY(ReduceFromHeadSlice(dq_branches, 0, dq_heads));
  LRKV_TRY(query_.Backward(x, s.q, dq_heads, dx));
  LRKV_TRY_ASSIGN(Tensor dheads, dk.View({n, nb * hl, dqk}));
  LRKV_TRY_ASSIGN(Tensor dk_rope, Tensor::Empty({n, 1, dr}, dt, dev));
  LRKV_TRY(ReduceFromHeadSlice(dheads, dn, dk_rope));
  LRKV_TRY(LinearBackward(dk_rope, x, wk_rope_->value, &dx, wk_rope_->grad, kCat, /*accumulate_dx=*/true));
  LRKV_TRY_ASSIGN(Tensor dk_nope, Tensor::Empty({n, nb * hl, dn}, dt, dev));
  LRKV_TRY(ReduceFromHeadSlice(dheads, 0, dk_nope));
  for (const Reader& r : readers_) {
    const Tensor& c = s.blocks[r.block].latent;
    LRKV_TRY_ASSIGN(Tensor dc, Tensor::Zeros({n, db}, dt, dev));
    if (r.first != r.end) {
      const int64_t heads = r.end - r.first;
      const Within dk_block{dk_nope, (r.slot * hl + r.first) * dn, nb * hl * dn};
      const Within dv_block{dv, (r.slot * hl + r.first) * dvw, nb * hl * dvw};
      const Within wk{wk_up_->value, (r.branch * db * hl + r.first) * dn, hl * dn};
      const Within wv{wv_up_->value, (r.branch * db * hl + r.first) * dvw, hl * dvw};
      LRKV_TRY(GemmWithin(dk_block, false, wk, true, {dc, 0, db}, n, db, heads * dn, k_scale_, 0.0));
      LRKV_TRY(GemmWithin(dv_block, false, wv, true, {dc, 0, db}, n, db, heads * dvw, v_scale_, 1.0));
      LRKV_TRY(GemmWithin({c, 0, db}, true, dk_block, false, {wk_up_->grad, wk.offset, wk.ld}, db, heads * dn, n,
                          k_scale_, 1.0));
      LRKV_TRY(GemmWithin({c, 0, db}, true, dv_block, false, {wv_up_->grad, wv.offset, wv.ld}, db, heads * dvw, n,
                          v_scale_, 1.0));
    }
    LRKV_TRY(blocks_[r.block].Backward(x, s.blocks[r.block], dc, dx));
  }
  return absl::OkStatus();
}

// The query as MLA's; the KV down-projection in `blocks` blocks, each normed on its own; per-block
// up-projections; one RoPE key for every head and branch. Cached: the blocks and the RoPE key,
// c + d_R, and under QK-norm a key scale per (block, head reading it); decoding splits the blocks
// over TP ranks (c / tp + d_R each, at most `blocks` ways) and their key scales with them.
LRKV_ATTENTION_VARIANTS(mlra_attention) {
  AttentionVariantInfo v;
  v.kind = MLRA, v.name = "mlra", v.own_fields = {"mlra"};
  v.gpt2_small_fields = "attention: MLRA mlra { kv_lora_rank: 256 rope_dim: 32 q_lora_rank: 0 }";
  v.fill_defaults = [](ModelConfig& c) {
    MlraConfig& m = *c.mutable_mlra();
    if (m.blocks() == 0) m.set_blocks(4);
    if (m.heads_per_block_group() == 0) m.set_heads_per_block_group(c.n_heads());
    if (m.nope_dim() == 0) m.set_nope_dim(c.d_model() / c.n_heads());
    if (m.v_dim() == 0) m.set_v_dim(c.d_model() / c.n_heads());
  };
  v.validate = [](const ModelConfig& c) {
    const MlraConfig& m = c.mlra();
    LRKV_REQUIRE(m.kv_lora_rank() > 0 && m.kv_lora_rank() % m.blocks() == 0, "model.mlra.kv_lora_rank (",
                 m.kv_lora_rank(), ") must be set and a multiple of model.mlra.blocks (", m.blocks(), ")");
    LRKV_REQUIRE(m.rope_dim() > 0 && m.rope_dim() % 2 == 0,
                 "model.mlra.rope_dim must be set, positive and even for MLRA, got ", m.rope_dim());
    LRKV_REQUIRE(c.n_heads() % m.heads_per_block_group() == 0, "model.mlra.heads_per_block_group (",
                 m.heads_per_block_group(), ") must divide model.n_heads (", c.n_heads(), ")");
    const int64_t groups = c.n_heads() / m.heads_per_block_group();
    LRKV_REQUIRE(m.blocks() % groups == 0, "model.mlra.blocks (", m.blocks(), ") must be a multiple of the ", groups,
                 " head groups (n_heads / heads_per_block_group), so every head reads as many blocks");
    return absl::OkStatus();
  };
  v.kv_heads = [](const ModelConfig& c) { return c.n_heads(); };
  v.cost = [](const ModelConfig& c, int tp) {
    const MlraConfig& m = c.mlra();
    const Widths w = WidthsOf(c);
    const int64_t d = c.d_model(), h = c.n_heads();
    const int64_t dn = m.nope_dim(), dr = m.rope_dim(), dv = m.v_dim(), kv = m.kv_lora_rank(), q = m.q_lora_rank();
    AttentionCost a;
    const int64_t query = q == 0 ? d * h * (dn + dr) : d * q + q * h * (dn + dr);
    a.matmul_params = query + d * kv + w.branches * w.block_width * h * (dn + dv) + d * dr + h * dv * d;
    a.norm_params = kv + q;
    a.qk_dim = dn + dr;
    a.v_dim = dv;
    a.branches = w.branches;
    // The blocks and the RoPE key; under QK-norm a key scale per (block, head reading it).
    const int64_t per_group = m.heads_per_block_group();
    a.kv_cache = kv + dr + (c.qk_norm() ? w.blocks * per_group : 0);
    a.replicated_matmul_params = (q == 0 ? 0 : d * q) + d * kv + d * dr;
    // Decoding at a tp that divides the blocks gives each rank blocks / tp of them (all their
    // readers) and the RoPE key; otherwise every rank caches every block, for its heads (the
    // training partition, by head).
    const bool by_block = tp <= w.blocks && w.blocks % tp == 0;
    const int64_t scales = !c.qk_norm() ? 0 : by_block ? w.blocks / tp * per_group : w.branches * (h / tp);
    a.kv_cache_per_rank = (by_block ? kv / tp : kv) + dr + scales;
    // Training: every rank computes every block (the partition by head).
    const int64_t hl = h / tp;
    a.core_heads_per_rank = a.core_kv_heads_per_rank = w.branches * hl;
    a.saved_per_token = 2 * kv + w.blocks + (q == 0 ? 0 : 2 * q + 1);  // each latent before and after its norm, rstd
    a.saved_stats_per_token = w.blocks + (q == 0 ? 0 : 1);
    // The query's gradient summed over branches, then the query latent's or the RoPE key's, NoPE
    // keys' and one block's gradients.
    a.backward_per_token = hl * (dn + dr) + std::max(2 * q, dr + w.branches * hl * dn + 2 * w.block_width);
    return a;
  };
  v.create = MlraAttention::Create;
  return {v};
}

}  // namespace lrkv
