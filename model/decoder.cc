#include "model/decoder.h"

#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/embedding.h"
#include "runtime/ops/gemm.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Create(const ModelConfig& c, DType dtype, Device device) {
  std::unique_ptr<Decoder> m(new Decoder(c, dtype, device));
  const int64_t v = c.vocab_size(), d = c.d_model();
  LRKV_TRY_ASSIGN(m->embed_,
                  m->params_.Add({"embed.weight", {v, d}, InitKind::kNormal, c.init_std(), ParamRole::kEmbedding}));
  for (int i = 0; i < c.n_layers(); ++i) {
    LRKV_TRY_ASSIGN(auto block, Block::Create(c, i, m->params_));
    m->blocks_.push_back(std::move(block));
  }
  LRKV_TRY_ASSIGN(m->final_norm_, NormLayer::Create(c, "final_norm.", m->params_));
  if (c.tie_embeddings()) {
    m->head_ = m->embed_;
  } else {
    LRKV_TRY_ASSIGN(m->head_,
                    m->params_.Add({"lm_head.weight", {v, d}, InitKind::kNormal, c.init_std(), ParamRole::kEmbedding}));
  }
  m->block_acts_.resize(c.n_layers());
  return m;
}

int64_t Decoder::KvCacheValuesPerTokenPerLayer() const {
  return blocks_.front()->attention().variant().KvCacheValuesPerToken();
}

absl::StatusOr<double> Decoder::Forward(const Tensor& tokens, const Tensor& targets) {
  LRKV_REQUIRE(tokens.rank() == 2 && targets.shape() == tokens.shape(), "Decoder::Forward: tokens ",
               tokens.DebugString(), " and targets ", targets.DebugString(), " must both be (B, T)");
  LRKV_REQUIRE(tokens.dim(1) <= config_.seq_len(), "Decoder::Forward: sequence length ", tokens.dim(1),
               " exceeds model.seq_len ", config_.seq_len());
  const int64_t b = tokens.dim(0), t = tokens.dim(1), n = b * t, d = config_.d_model(), v = config_.vocab_size();
  const DType dt = params_.dtype();
  const Device dev = params_.device();
  tokens_ = tokens, targets_ = targets;
  block_inputs_.assign(blocks_.size() + 1, Tensor());
  LRKV_TRY_ASSIGN(block_inputs_[0], Tensor::Empty({b, t, d}, dt, dev));
  LRKV_TRY_ASSIGN(Tensor flat_x, block_inputs_[0].View({n, d}));
  LRKV_TRY(EmbeddingForward(tokens, embed_->value, flat_x));
  for (size_t i = 0; i < blocks_.size(); ++i) {
    LRKV_TRY_ASSIGN(block_inputs_[i + 1], Tensor::Empty({b, t, d}, dt, dev));
    LRKV_TRY(blocks_[i]->Forward(block_inputs_[i], block_inputs_[i + 1], block_acts_[i]));
  }
  LRKV_TRY_ASSIGN(final_normed_, Tensor::Empty({n, d}, dt, dev));
  LRKV_TRY_ASSIGN(Tensor last, block_inputs_.back().View({n, d}));
  LRKV_TRY(final_norm_.Forward(last, final_normed_, final_norm_acts_));
  LRKV_TRY_ASSIGN(logits_, Tensor::Empty({n, v}, dt, dev));
  LRKV_TRY(Gemm(final_normed_, head_->value, logits_, GemmArgs::Dense(n, v, d, false, /*trans_b=*/true),
                FlopCategory::kLmHead));
  LRKV_TRY_ASSIGN(lse_, Tensor::Empty({n}, dt, dev));
  double loss_sum = 0;
  LRKV_TRY(CrossEntropyForward(logits_, targets, lse_, &loss_sum));
  return loss_sum / n;
}

absl::Status Decoder::Backward(double loss_scale) {
  LRKV_REQUIRE(logits_.defined(), "Decoder::Backward called before Forward");
  PassScope pass(Pass::kBackward);
  const int64_t n = logits_.dim(0), v = logits_.dim(1), d = config_.d_model();
  const DType dt = params_.dtype();
  const Device dev = params_.device();
  LRKV_TRY_ASSIGN(Tensor dlogits, Tensor::Empty({n, v}, dt, dev));
  LRKV_TRY(CrossEntropyBackward(logits_, targets_, lse_, loss_scale / n, dlogits));
  // LM head: d(normed) = dlogits W_head;  dW_head += dlogits^T normed.
  LRKV_TRY_ASSIGN(Tensor dnormed, Tensor::Empty({n, d}, dt, dev));
  LRKV_TRY(Gemm(dlogits, head_->value, dnormed, GemmArgs::Dense(n, d, v), FlopCategory::kLmHead));
  GemmArgs gw = GemmArgs::Dense(v, d, n, /*trans_a=*/true);
  gw.beta = 1.0;
  LRKV_TRY(Gemm(dlogits, final_normed_, head_->grad, gw, FlopCategory::kLmHead));
  LRKV_TRY_ASSIGN(Tensor dx, Tensor::Empty(block_inputs_.back().shape(), dt, dev));
  LRKV_TRY_ASSIGN(Tensor dx_flat, dx.View({n, d}));
  LRKV_TRY(final_norm_.Backward(dnormed, final_norm_acts_, dx_flat));
  for (size_t i = blocks_.size(); i-- > 0;) {
    LRKV_TRY_ASSIGN(Tensor dprev, Tensor::Empty(dx.shape(), dt, dev));
    LRKV_TRY(blocks_[i]->Backward(dx, block_acts_[i], dprev));
    dx = dprev;
  }
  LRKV_TRY_ASSIGN(dx_flat, dx.View({n, d}));
  return EmbeddingBackward(tokens_, dx_flat, embed_->grad);
}

}  // namespace lrkv
