#include "model/attention/attention_layer.h"

#include <cmath>

#include "parallel/tensor_parallel.h"
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
  LRKV_TRY_ASSIGN(layer->wo_, params.Add(RowParallelWeight(prefix + "wo", o_width, c.d_model(), std)));
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
    LRKV_TRY_ASSIGN(a.q_rstd, Tensor::Empty({b * t * d.heads}, dt, dev));
    LRKV_TRY_ASSIGN(a.k_rstd, Tensor::Empty({b * t * d.kv_heads}, dt, dev));
    LRKV_TRY(RmsNormForward(a.q_raw, nullptr, eps_, q, a.q_rstd));
    LRKV_TRY(RmsNormForward(a.k_raw, nullptr, eps_, k, a.k_rstd));
  }
  LRKV_TRY(RopeForward(q, d.rope_dims, rope_theta_, q));  // in place
  LRKV_TRY(RopeForward(k, d.rope_dims, rope_theta_, k));
  a.q = q, a.k = k;
  LRKV_TRY_ASSIGN(a.o, Tensor::Empty({b, t, d.heads, d.v_dim}, dt, dev));
  LRKV_TRY_ASSIGN(a.lse, Tensor::Empty({b, d.heads, t}, LseDType(dt), dev));
  LRKV_TRY(CausalAttentionForward(a.q, a.k, a.v, 1.0 / std::sqrt(double(d.qk_dim)), a.o, a.lse, d.kv_groups));
  const Tensor* o = &a.o;
  if (d.branches > 1) {  // (B T, branches, H / branches * Dv) -> (B T, 1, ...)
    LRKV_TRY_ASSIGN(Tensor branches, a.o.View({b * t, d.branches, d.heads / d.branches * d.v_dim}));
    LRKV_TRY_ASSIGN(a.o_heads, Tensor::Empty({b * t, 1, branches.dim(2)}, dt, dev));
    LRKV_TRY(ReduceFromHeadSlice(branches, 0, a.o_heads));
    o = &a.o_heads;
  }
  LRKV_TRY(LinearForward(*o, wo_->value, y, FlopCategory::kAttentionProjection));
  return AllReduceOverTp(tp_, y);  // sum of the ranks' heads
}

absl::Status AttentionLayer::Backward(const Tensor& dy, const AttentionActivations& a, Tensor& dx) {
  const AttentionDims d = variant_->dims();
  const DType dt = dy.dtype();
  const Device dev = dy.device();
  LRKV_TRY_ASSIGN(Tensor d_o, Tensor::Empty(a.o.shape(), dt, dev));
  if (d.branches > 1) {  // every branch of a head receives the head's gradient
    LRKV_TRY_ASSIGN(Tensor d_heads, Tensor::Empty(a.o_heads.shape(), dt, dev));
    LRKV_TRY(LinearBackward(dy, a.o_heads, wo_->value, &d_heads, wo_->grad, FlopCategory::kAttentionProjection));
    LRKV_TRY_ASSIGN(Tensor branches, d_o.View({a.o_heads.dim(0), d.branches, a.o_heads.dim(2)}));
    LRKV_TRY(CopyToHeadSlice(d_heads, 0, branches));
  } else {
    LRKV_TRY(LinearBackward(dy, a.o, wo_->value, &d_o, wo_->grad, FlopCategory::kAttentionProjection));
  }
  LRKV_TRY_ASSIGN(Tensor dq, Tensor::Empty(a.q.shape(), dt, dev));
  LRKV_TRY_ASSIGN(Tensor dk, Tensor::Empty(a.k.shape(), dt, dev));
  LRKV_TRY_ASSIGN(Tensor dv, Tensor::Empty(a.v.shape(), dt, dev));
  LRKV_TRY(CausalAttentionBackward(d_o, a.q, a.k, a.v, a.lse, 1.0 / std::sqrt(double(d.qk_dim)), dq, dk, dv,
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
