#include "model/attention/attention_layer.h"

#include <cmath>

#include "parallel/tensor_parallel.h"
#include "runtime/flop_counter.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/head_slice.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/ops/rope.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<std::unique_ptr<AttentionLayer>> AttentionLayer::Create(const ModelConfig& c, const std::string& prefix,
                                                                       ParameterSet& params, Communicator* tp) {
  auto layer = std::make_unique<AttentionLayer>();
  layer->tp_ = tp;
  LRKV_TRY_ASSIGN(layer->variant_, MakeAttentionVariant(c, prefix, params));
  const AttentionDims dims = layer->variant_->dims();
  // Residual-branch outputs start smaller with depth (GPT-2's 1/sqrt(2 L) scaling).
  const int64_t o_width = c.n_heads() * dims.v_dim;  // all heads
  const double std = LinearInitStd(o_width) / std::sqrt(2.0 * c.n_layers());
  // A variant holding every head on every TP rank (MLRA decoding by block) needs all of W_O; its
  // ranks' outputs are partial sums all the same.
  const bool every_head = params.tp().size > 1 && dims.heads / dims.branches == c.n_heads();
  LRKV_TRY_ASSIGN(layer->wo_, params.Add(every_head ? ReplicatedWeight(prefix + "wo", {o_width, c.d_model()}, std)
                                                    : RowParallelWeight(prefix + "wo", o_width, c.d_model(), std)));
  layer->qk_norm_ = c.qk_norm();
  layer->eps_ = c.norm_eps();
  layer->rope_theta_ = c.rope_theta();
  return layer;
}

absl::Status AttentionLayer::Forward(const Tensor& x, Tensor& y, AttentionActivations& a) {
  const AttentionDims d = variant_->dims();
  const int64_t b = x.dim(0), t = x.dim(1);
  const DType dt = x.dtype();
  const Device dev = x.device();
  a.x = x;
  LRKV_TRY_ASSIGN(Tensor q, Tensor::Empty({b, t, d.heads, d.qk_dim}, dt, dev));
  LRKV_TRY_ASSIGN(Tensor k, Tensor::Empty({b, t, d.kv_heads, d.qk_dim}, dt, dev));
  LRKV_TRY_ASSIGN(a.v, Tensor::Empty({b, t, d.kv_heads, d.v_dim}, dt, dev));
  LRKV_TRY(variant_->Forward(x, q, k, a.v, a.variant));
  if (qk_norm_) {
    a.q_raw = q, a.k_raw = k;
    LRKV_TRY_ASSIGN(q, Tensor::Empty(a.q_raw.shape(), dt, dev));
    LRKV_TRY_ASSIGN(k, Tensor::Empty(a.k_raw.shape(), dt, dev));
    LRKV_TRY_ASSIGN(a.q_rstd, Tensor::Empty({b * t * d.heads}, AccumDType(dt), dev));
    LRKV_TRY_ASSIGN(a.k_rstd, Tensor::Empty({b * t * d.kv_heads}, AccumDType(dt), dev));
    LRKV_TRY(RmsNormForward(a.q_raw, nullptr, eps_, q, a.q_rstd));
    LRKV_TRY(RmsNormForward(a.k_raw, nullptr, eps_, k, a.k_rstd));
  }
  LRKV_TRY(RopeForward(q, d.rope_dims, rope_theta_, q));  // in place
  LRKV_TRY(RopeForward(k, d.rope_dims, rope_theta_, k));
  a.q = q, a.k = k;
  LRKV_TRY_ASSIGN(a.o, Tensor::Empty({b, t, d.heads, d.v_dim}, dt, dev));
  LRKV_TRY_ASSIGN(a.lse, Tensor::Empty({b, d.heads, t}, AccumDType(dt), dev));
  LRKV_TRY(CausalAttentionForward(a.q, a.k, a.v, 1.0 / std::sqrt(double(d.qk_dim)), a.o, a.lse, d.kv_groups));
  LRKV_TRY(OutputProjection(a.o, y, a.o_heads));
  if (recompute_core_) a.o = Tensor(), a.lse = Tensor(), a.o_heads = Tensor();  // Backward recomputes them
  return absl::OkStatus();
}

// o (B, T, H, Dv) -> each head's branches summed (o_heads, when branches > 1) -> y = o W_O, summed
// over the ranks' heads.
absl::Status AttentionLayer::OutputProjection(const Tensor& o, Tensor& y, Tensor& o_heads) {
  LRKV_TRY_ASSIGN(const Tensor heads, SumBranches(o, o_heads));
  LRKV_TRY(LinearForward(heads, *wo_, y, FlopCategory::kAttentionProjection));
  return AllReduceOverTp(tp_, y);  // sum of the ranks' heads
}

absl::StatusOr<Tensor> AttentionLayer::SumBranches(const Tensor& o, Tensor& o_heads) const {
  const AttentionDims d = variant_->dims();
  if (d.branches == 1) return o;
  const int64_t n = o.numel() / (d.heads * d.v_dim);  // (B T, branches, H / branches * Dv) -> (B T, 1, ...)
  LRKV_TRY_ASSIGN(Tensor branches, o.View({n, d.branches, d.heads / d.branches * d.v_dim}));
  LRKV_TRY_ASSIGN(o_heads, Tensor::Empty({n, 1, branches.dim(2)}, o.dtype(), o.device()));
  LRKV_TRY(ReduceFromHeadSlice(branches, 0, o_heads));
  return o_heads;
}

// QK-norm (when on and `norm`) and RoPE (when `rotate`) of t (1, T, heads, D), whose first row is
// position `first`.
absl::StatusOr<Tensor> AttentionLayer::NormAndRotate(const Tensor& t, int64_t first, bool norm, bool rotate) const {
  LRKV_TRY_ASSIGN(Tensor out, Tensor::Empty(t.shape(), t.dtype(), t.device()));
  const Tensor* in = &t;
  if (qk_norm_ && norm) {
    LRKV_TRY_ASSIGN(Tensor rstd, Tensor::Empty({t.numel() / t.dim(3)}, AccumDType(t.dtype()), t.device()));
    LRKV_TRY(RmsNormForward(t, nullptr, eps_, out, rstd));
    in = &out;
  }
  if (rotate) {
    LRKV_TRY(RopeForward(*in, variant_->dims().rope_dims, rope_theta_, out, first));
  } else if (in == &t) {
    LRKV_TRY(out.CopyFrom(t));
  }
  return out;
}

absl::Status AttentionLayer::Decode(const Tensor& x, const std::vector<int64_t>& seqs,
                                    const std::vector<int64_t>& lengths, std::vector<Tensor>& cache, Tensor& y) {
  const AttentionDims d = variant_->dims();
  const int64_t count = x.dim(0), n = x.dim(1);
  const DType dt = x.dtype();
  const Device dev = x.device();
  LRKV_TRY_ASSIGN(Tensor q, Tensor::Empty({count, n, d.heads, d.qk_dim}, dt, dev));
  LRKV_TRY(variant_->Queries(x, q));
  std::vector<Tensor> rows;  // (B', n, width) per part
  LRKV_TRY(variant_->CacheRows(x, rows));
  LRKV_TRY_ASSIGN(Tensor o, Tensor::Empty({count, n, d.heads, d.v_dim}, dt, dev));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t seq = seqs[i], start = lengths[seq], len = start + n;
    // A variant whose cache is its keys and values stores the keys ready for the core (QK-normed,
    // rotated at their positions) and reads both in place; one that absorbs its up-projections
    // stores the RoPE key rotated and, for one token, attends over its latents in place; the
    // others' keys and values, and the absorbing ones' for a prompt's many queries, which amortise
    // it, are rebuilt from the cache (LRKV's inside its decoding kernel, for one token).
    const bool ready = variant_->CachesKeysAndValues(), absorbed = variant_->AbsorbsDecoding();
    std::vector<Tensor> past;  // (1, len, width) per part
    for (size_t p = 0; p < cache.size(); ++p) {
      const int64_t width = cache[p].dim(2);
      LRKV_REQUIRE(len <= cache[p].dim(1), "decoding: sequence ", seq, " would reach ", len,
                   " positions, more than the cache's ", cache[p].dim(1));
      LRKV_TRY_ASSIGN(Tensor positions, cache[p].Slice(seq, seq + 1));
      LRKV_TRY_ASSIGN(positions, positions.View({cache[p].dim(1), width}));
      LRKV_TRY_ASSIGN(Tensor fresh, positions.Slice(start, len));
      LRKV_TRY_ASSIGN(Tensor row, rows[p].Slice(i, i + 1));
      if (ready && p == 0) {
        LRKV_TRY_ASSIGN(row, row.View({1, n, d.kv_heads, d.qk_dim}));
        LRKV_TRY_ASSIGN(row, NormAndRotate(row, start, true, true));
      } else if (absorbed && p + 1 == cache.size()) {  // the RoPE key: rotated, not normed
        LRKV_TRY_ASSIGN(row, row.View({1, n, 1, width}));
        LRKV_TRY_ASSIGN(row, NormAndRotate(row, start, false, true));
      }
      LRKV_TRY_ASSIGN(row, row.View({n, width}));
      LRKV_TRY(fresh.CopyFrom(row));
      LRKV_TRY_ASSIGN(Tensor filled, positions.Slice(0, len));
      LRKV_TRY_ASSIGN(filled, filled.View({1, len, width}));
      past.push_back(filled);
    }
    LRKV_TRY_ASSIGN(Tensor qi, q.Slice(i, i + 1));
    LRKV_TRY_ASSIGN(qi, NormAndRotate(qi, start, true, true));
    LRKV_TRY_ASSIGN(Tensor oi, o.Slice(i, i + 1));
    const double scale = 1.0 / std::sqrt(double(d.qk_dim));
    const KeyTransform keys{qk_norm_, eps_, d.rope_dims, rope_theta_};
    if (absorbed && n == 1) {
      LRKV_TRY(variant_->DecodeAbsorbed(qi, past, scale, oi));
      continue;
    }
    LRKV_TRY_ASSIGN(Tensor lse, Tensor::Empty({1, d.heads, n}, AccumDType(dt), dev));
    if (ready) {
      LRKV_TRY_ASSIGN(const Tensor k, past[0].View({1, len, d.kv_heads, d.qk_dim}));
      LRKV_TRY_ASSIGN(const Tensor v, past[1].View({1, len, d.kv_heads, d.v_dim}));
      LRKV_TRY(CausalAttentionForward(qi, k, v, scale, oi, lse, d.kv_groups));
      continue;
    }
    const int64_t value_width = variant_->DecodeValueWidth();
    if (n == 1 && variant_->DecodesFactored()) {  // a prompt's many queries amortise rebuilding below
      LRKV_TRY_ASSIGN(Tensor o_wide, Tensor::Empty({1, 1, d.heads, value_width}, dt, dev));
      LRKV_TRY(variant_->DecodeFactored(qi, past, keys, scale, o_wide, lse));
      LRKV_TRY(variant_->FinishDecodeValues(o_wide, oi));
      continue;
    }
    LRKV_TRY_ASSIGN(Tensor k, Tensor::Empty({1, len, d.kv_heads, d.qk_dim}, dt, dev));
    LRKV_TRY_ASSIGN(Tensor v, Tensor::Empty({1, len, d.kv_heads, value_width}, dt, dev));
    LRKV_TRY(variant_->KeysValues(past, k, v));
    LRKV_TRY_ASSIGN(k, NormAndRotate(k, 0, true, !absorbed));  // an absorbing cache holds the RoPE key rotated
    if (value_width == d.v_dim) {
      LRKV_TRY(CausalAttentionForward(qi, k, v, scale, oi, lse, d.kv_groups));
      continue;
    }
    LRKV_TRY_ASSIGN(Tensor o_wide, Tensor::Empty({1, n, d.heads, value_width}, dt, dev));
    LRKV_TRY(CausalAttentionForward(qi, k, v, scale, o_wide, lse, d.kv_groups));
    LRKV_TRY(variant_->FinishDecodeValues(o_wide, oi));
  }
  Tensor o_heads;
  return OutputProjection(o, y, o_heads);
}

absl::Status AttentionLayer::Backward(const Tensor& dy, const AttentionActivations& a, Tensor& dx) {
  const AttentionDims d = variant_->dims();
  const DType dt = dy.dtype();
  const Device dev = dy.device();
  Tensor o = a.o, lse = a.lse, o_heads = a.o_heads;
  if (!o.defined()) {  // recompute_core_: the same core on the same q, k, v, so the same bits
    const PassScope recomputing(Pass::kRecompute);
    const int64_t b = a.q.dim(0), t = a.q.dim(1);
    LRKV_TRY_ASSIGN(o, Tensor::Empty({b, t, d.heads, d.v_dim}, dt, dev));
    LRKV_TRY_ASSIGN(lse, Tensor::Empty({b, d.heads, t}, AccumDType(dt), dev));
    LRKV_TRY(CausalAttentionForward(a.q, a.k, a.v, 1.0 / std::sqrt(double(d.qk_dim)), o, lse, d.kv_groups));
    LRKV_TRY(SumBranches(o, o_heads).status());
  }
  LRKV_TRY_ASSIGN(Tensor d_o, Tensor::Empty(o.shape(), dt, dev));
  if (d.branches > 1) {  // every branch of a head receives the head's gradient
    LRKV_TRY_ASSIGN(Tensor d_heads, Tensor::Empty(o_heads.shape(), dt, dev));
    LRKV_TRY(LinearBackward(dy, o_heads, wo_->value, &d_heads, wo_->grad, FlopCategory::kAttentionProjection));
    LRKV_TRY_ASSIGN(Tensor branches, d_o.View({o_heads.dim(0), d.branches, o_heads.dim(2)}));
    LRKV_TRY(CopyToHeadSlice(d_heads, 0, branches));
  } else {
    LRKV_TRY(LinearBackward(dy, o, wo_->value, &d_o, wo_->grad, FlopCategory::kAttentionProjection));
  }
  LRKV_TRY_ASSIGN(Tensor dq, Tensor::Empty(a.q.shape(), dt, dev));
  LRKV_TRY_ASSIGN(Tensor dk, Tensor::Empty(a.k.shape(), dt, dev));
  LRKV_TRY_ASSIGN(Tensor dv, Tensor::Empty(a.v.shape(), dt, dev));
  LRKV_TRY(CausalAttentionBackward(d_o, a.q, a.k, a.v, lse, 1.0 / std::sqrt(double(d.qk_dim)), dq, dk, dv,
                                   d.kv_groups));
  LRKV_TRY(RopeBackward(dq, d.rope_dims, rope_theta_, dq));
  LRKV_TRY(RopeBackward(dk, d.rope_dims, rope_theta_, dk));
  if (qk_norm_) {
    LRKV_TRY_ASSIGN(Tensor dq_raw, Tensor::Empty(a.q.shape(), dt, dev));
    LRKV_TRY_ASSIGN(Tensor dk_raw, Tensor::Empty(a.k.shape(), dt, dev));
    LRKV_TRY(RmsNormBackward(dq, a.q_raw, nullptr, a.q_rstd, dq_raw, nullptr));
    LRKV_TRY(RmsNormBackward(dk, a.k_raw, nullptr, a.k_rstd, dk_raw, nullptr));
    dq = dq_raw, dk = dk_raw;
  }
  LRKV_TRY(variant_->Backward(a.x, a.variant.get(), dq, dk, dv, dx));
  return AllReduceOverTp(tp_, dx);  // sum of the ranks' heads' contributions
}

}  // namespace lrkv
