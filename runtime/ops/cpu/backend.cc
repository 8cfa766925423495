// The CPU backend's table: every kernel of ops/cpu/, one line each. A new op adds its line here.
#include "runtime/ops/backend.h"
#include "runtime/ops/cpu/kernels.h"

namespace lrkv::cpu {
namespace {
Backend Build() {
  Backend b;
  b.name = "cpu";
  b.gemm = Gemm;
  b.embedding_forward = EmbeddingForward;
  b.embedding_backward = EmbeddingBackward;
  b.rms_norm_forward = RmsNormForward;
  b.rms_norm_backward = RmsNormBackward;
  b.layer_norm_forward = LayerNormForward;
  b.layer_norm_backward = LayerNormBackward;
  b.rope = Rope;
  b.activation_forward = ActivationForward;
  b.activation_backward = ActivationBackward;
  b.swiglu_forward = SwiGluForward;
  b.swiglu_backward = SwiGluBackward;
  b.add = Add;
  b.logit_row_max = LogitRowMax;
  b.cross_entropy_partial_sums = CrossEntropyPartialSums;
  b.cross_entropy_backward = CrossEntropyBackward;
  b.causal_attention_forward = CausalAttentionForward;
  b.causal_attention_backward = CausalAttentionBackward;
  b.sum_squares = SumSquares;
  b.scale = Scale;
  b.adamw_update = AdamWUpdate;
  b.copy_to_head_slice = CopyToHeadSlice;
  b.reduce_from_head_slice = ReduceFromHeadSlice;
  return b;
}
}  // namespace

const Backend& Table() {
  static const Backend table = Build();
  return table;
}

}  // namespace lrkv::cpu
