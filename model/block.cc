#include "model/block.h"

#include "absl/strings/str_cat.h"
#include "runtime/ops/add.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<std::unique_ptr<Block>> Block::Create(const ModelConfig& c, int index, ParameterSet& params,
                                                     Communicator* tp) {
  auto b = std::make_unique<Block>();
  const std::string p = absl::StrCat("layers.", index, ".");
  LRKV_TRY_ASSIGN(b->attn_norm_, NormLayer::Create(c, p + "attn_norm.", params));
  LRKV_TRY_ASSIGN(b->attn_, AttentionLayer::Create(c, p + "attn.", params, tp));
  LRKV_TRY_ASSIGN(b->mlp_norm_, NormLayer::Create(c, p + "mlp_norm.", params));
  LRKV_TRY_ASSIGN(b->mlp_, Mlp::Create(c, p + "mlp.", params, tp));
  return b;
}

absl::Status Block::Forward(const Tensor& x, Tensor& y, BlockActivations& a) {
  return Run(x, y, a, [&](const Tensor& normed, Tensor& h) { return attn_->Forward(normed, h, a.attn); });
}

absl::Status Block::Decode(const Tensor& x, const std::vector<int64_t>& seqs, const std::vector<int64_t>& lengths,
                           std::vector<Tensor>& cache, Tensor& y) {
  BlockActivations unused;
  return Run(x, y, unused,
             [&](const Tensor& normed, Tensor& h) { return attn_->Decode(normed, seqs, lengths, cache, h); });
}

absl::Status Block::Run(const Tensor& x, Tensor& y, BlockActivations& a,
                        const std::function<absl::Status(const Tensor&, Tensor&)>& attend) {
  auto like = [&]() { return Tensor::Empty(x.shape(), x.dtype(), x.device()); };
  LRKV_TRY_ASSIGN(Tensor normed, like());
  LRKV_TRY(attn_norm_.Forward(x, normed, a.attn_norm));
  LRKV_TRY_ASSIGN(Tensor h, like());
  LRKV_TRY(attend(normed, h));
  LRKV_TRY(Add(x, h, h));  // h = x + attention
  LRKV_TRY_ASSIGN(Tensor normed2, like());
  LRKV_TRY(mlp_norm_.Forward(h, normed2, a.mlp_norm));
  LRKV_TRY(mlp_.Forward(normed2, y, a.mlp));
  return Add(h, y, y);  // y = h + mlp
}

absl::Status Block::Backward(const Tensor& dy, const BlockActivations& a, Tensor& dx) {
  auto like = [&]() { return Tensor::Empty(dy.shape(), dy.dtype(), dy.device()); };
  LRKV_TRY_ASSIGN(Tensor d_normed2, like());
  LRKV_TRY(mlp_.Backward(dy, a.mlp, d_normed2));
  LRKV_TRY_ASSIGN(Tensor dh, like());
  LRKV_TRY(mlp_norm_.Backward(d_normed2, a.mlp_norm, dh));
  LRKV_TRY(Add(dh, dy, dh));  // residual path
  LRKV_TRY_ASSIGN(Tensor d_normed, like());
  LRKV_TRY(attn_->Backward(dh, a.attn, d_normed));
  LRKV_TRY(attn_norm_.Backward(d_normed, a.attn_norm, dx));
  return Add(dx, dh, dx);  // residual path
}

}  // namespace lrkv
