#include "model/decoder.h"

#include "model/attention/attention_variant.h"
#include "parallel/tensor_parallel.h"
#include "parallel/vocab_parallel_cross_entropy.h"
#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/embedding.h"
#include "runtime/ops/gemm.h"
#include "runtime/ops/head_slice.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Create(const ModelConfig& c, const ModelPlacement& placement,
                                                         DType dtype, Device device) {
  std::unique_ptr<Decoder> m(new Decoder(c, placement, dtype, device));
  ModelPlacement& p = m->placement_;
  if (p.end_layer < 0) p.end_layer = c.n_layers();
  LRKV_REQUIRE(p.tp == nullptr || (p.tp->rank() == p.tp_rank.index && p.tp->size() == p.tp_rank.size),
               "model placement: TP rank ", p.tp_rank.index, " of ", p.tp_rank.size, " does not match its group");
  LRKV_REQUIRE(0 <= p.first_layer && p.first_layer < p.end_layer && p.end_layer <= c.n_layers(), "layers [",
               p.first_layer, ", ", p.end_layer, ") are not a stage of a ", c.n_layers(), "-layer model");
  const int64_t v = c.vocab_size(), d = c.d_model();
  // Vocabulary-parallel: rows split over TP.
  const ParameterSpec embed{"embed.weight", {v, d}, InitKind::kNormal, c.init_std(), ParamRole::kEmbedding,
                            TpSplit::kSplit, 0};
  if (p.first_stage || (p.last_stage && c.tie_embeddings())) {
    LRKV_TRY_ASSIGN(m->embed_, m->params_.Add(embed));
  }
  for (int i = p.first_layer; i < p.end_layer; ++i) {
    LRKV_TRY_ASSIGN(auto block, Block::Create(c, i, m->params_, p.tp));
    m->blocks_.push_back(std::move(block));
  }
  if (p.last_stage) {
    LRKV_TRY_ASSIGN(m->final_norm_, NormLayer::Create(c, "final_norm.", m->params_));
    if (c.tie_embeddings()) {
      m->head_ = m->embed_;
    } else {
      ParameterSpec head = embed;
      head.name = "lm_head.weight";
      LRKV_TRY_ASSIGN(m->head_, m->params_.Add(head));
    }
  }
  return m;
}

int64_t Decoder::KvCacheValuesPerTokenPerLayer() const {
  return blocks_.front()->attention().variant().KvCacheValuesPerToken();
}

bool Decoder::IsPrimaryCopy(const Parameter& p) const {
  if (p.block.dim < 0 && params_.tp().index != 0) return false;
  return &p != embed_ || placement_.first_stage;
}

int64_t Decoder::vocab_begin() const { return config_.vocab_size() / params_.tp().size * params_.tp().index; }

absl::StatusOr<double> Decoder::ForwardStage(const Tensor& tokens, const Tensor& input, const Tensor& targets,
                                             DecoderActivations& a, Tensor& output) {
  const Tensor& shape_source = placement_.first_stage ? tokens : input;
  LRKV_REQUIRE(shape_source.rank() >= 2, "Decoder::ForwardStage: input ", shape_source.DebugString(),
               " must be (B, T) tokens or (B, T, d) activations");
  const int64_t b = shape_source.dim(0), t = shape_source.dim(1), n = b * t, d = config_.d_model();
  LRKV_REQUIRE(t <= config_.seq_len(), "Decoder::ForwardStage: sequence length ", t, " exceeds model.seq_len ",
               config_.seq_len());
  const DType dt = params_.dtype();
  const Device dev = params_.device();
  a.block_inputs.assign(blocks_.size() + 1, Tensor());
  a.blocks.resize(blocks_.size());
  if (placement_.first_stage) {
    LRKV_REQUIRE(tokens.rank() == 2, "Decoder::ForwardStage: tokens ", tokens.DebugString(), " must be (B, T)");
    a.tokens = tokens;
    LRKV_TRY_ASSIGN(a.block_inputs[0], Tensor::Empty({b, t, d}, dt, dev));
    LRKV_TRY_ASSIGN(Tensor flat_x, a.block_inputs[0].View({n, d}));
    LRKV_TRY(EmbeddingForward(tokens, embed_->value, flat_x, vocab_begin(), config_.vocab_size()));
    LRKV_TRY(AllReduceOverTp(placement_.tp, flat_x));  // each rank looked up its vocabulary rows
  } else {
    LRKV_REQUIRE(input.shape() == Shape({b, t, d}), "Decoder::ForwardStage: input ", input.DebugString(),
                 " must be (B, T, d = ", d, ")");
    a.block_inputs[0] = input;
  }
  for (size_t i = 0; i < blocks_.size(); ++i) {
    LRKV_TRY_ASSIGN(a.block_inputs[i + 1], Tensor::Empty({b, t, d}, dt, dev));
    if (recompute_ == BLOCK) {  // keep the input only; BackwardStage reruns the block
      BlockActivations dropped;
      LRKV_TRY(blocks_[i]->Forward(a.block_inputs[i], a.block_inputs[i + 1], dropped));
    } else {
      LRKV_TRY(blocks_[i]->Forward(a.block_inputs[i], a.block_inputs[i + 1], a.blocks[i]));
    }
  }
  if (!placement_.last_stage) {
    output = a.block_inputs.back();
    return 0.0;
  }
  LRKV_REQUIRE(targets.shape() == Shape({b, t}), "Decoder::ForwardStage: targets ", targets.DebugString(),
               " must be (B, T) = (", b, ", ", t, ")");
  a.targets = targets;
  LRKV_TRY_ASSIGN(a.final_normed, Tensor::Empty({n, d}, dt, dev));
  LRKV_TRY_ASSIGN(Tensor last, a.block_inputs.back().View({n, d}));
  LRKV_TRY(final_norm_.Forward(last, a.final_normed, a.final_norm));
  const int64_t v_local = head_->value.dim(0);
  LRKV_TRY_ASSIGN(a.logits, Tensor::Empty({n, v_local}, dt, dev));
  LRKV_TRY(Gemm(a.final_normed, head_->value, a.logits, GemmArgs::Dense(n, v_local, d, false, /*trans_b=*/true),
                FlopCategory::kLmHead));
  LRKV_TRY_ASSIGN(a.lse, Tensor::Empty({n}, AccumDType(dt), dev));
  return VocabParallelCrossEntropyForward(placement_.tp, a.logits, targets, vocab_begin(), config_.vocab_size(), a.lse);
}

absl::Status Decoder::BackwardStage(const DecoderActivations& a, const Tensor& doutput, double loss_scale,
                                    Tensor& dinput) {
  PassScope pass(Pass::kBackward);
  const Tensor& out = a.block_inputs.back();  // (B, T, d)
  const int64_t n = out.dim(0) * out.dim(1), d = config_.d_model();
  const DType dt = params_.dtype();
  const Device dev = params_.device();
  Tensor dx;
  if (placement_.last_stage) {
    LRKV_REQUIRE(a.logits.defined(), "Decoder::BackwardStage called before ForwardStage");
    const int64_t v_local = a.logits.dim(1);
    LRKV_TRY_ASSIGN(Tensor dlogits, Tensor::Empty({n, v_local}, dt, dev));
    LRKV_TRY(CrossEntropyBackward(a.logits, a.targets, vocab_begin(), a.lse, loss_scale, dlogits));
    // LM head: d(normed) = dlogits W_head, summed over the vocabulary blocks;  dW_head += dlogits^T normed.
    LRKV_TRY_ASSIGN(Tensor dnormed, Tensor::Empty({n, d}, dt, dev));
    LRKV_TRY(Gemm(dlogits, head_->value, dnormed, GemmArgs::Dense(n, d, v_local), FlopCategory::kLmHead));
    LRKV_TRY(AllReduceOverTp(placement_.tp, dnormed));
    GemmArgs gw = GemmArgs::Dense(v_local, d, n, /*trans_a=*/true);
    gw.beta = 1.0;
    LRKV_TRY(Gemm(dlogits, a.final_normed, head_->grad, gw, FlopCategory::kLmHead));
    LRKV_TRY_ASSIGN(dx, Tensor::Empty(out.shape(), dt, dev));
    LRKV_TRY_ASSIGN(Tensor dx_flat, dx.View({n, d}));
    LRKV_TRY(final_norm_.Backward(dnormed, a.final_norm, dx_flat));
  } else {
    LRKV_REQUIRE(doutput.shape() == out.shape(), "Decoder::BackwardStage: doutput ", doutput.DebugString(),
                 " must match the stage output ", out.DebugString());
    dx = doutput;
  }
  for (size_t i = blocks_.size(); i-- > 0;) {
    LRKV_TRY_ASSIGN(Tensor dprev, Tensor::Empty(dx.shape(), dt, dev));
    if (recompute_ == BLOCK) {  // the same forward again, its activations this time kept
      BlockActivations rerun;
      {
        const PassScope recomputing(Pass::kRecompute);
        LRKV_TRY_ASSIGN(Tensor out_again, Tensor::Empty(dx.shape(), dt, dev));
        LRKV_TRY(blocks_[i]->Forward(a.block_inputs[i], out_again, rerun));
      }
      LRKV_TRY(blocks_[i]->Backward(dx, rerun, dprev));
    } else {
      LRKV_TRY(blocks_[i]->Backward(dx, a.blocks[i], dprev));
    }
    dx = dprev;
  }
  if (!placement_.first_stage) {
    dinput = dx;
    return absl::OkStatus();
  }
  LRKV_TRY_ASSIGN(Tensor dx_flat, dx.View({n, d}));
  return EmbeddingBackward(a.tokens, dx_flat, embed_->grad, vocab_begin());
}

absl::StatusOr<double> Decoder::Forward(const Tensor& tokens, const Tensor& targets) {
  LRKV_REQUIRE(placement_.first_stage && placement_.last_stage, "Decoder::Forward needs the whole pipeline");
  LRKV_REQUIRE(tokens.rank() == 2 && targets.shape() == tokens.shape(), "Decoder::Forward: tokens ",
               tokens.DebugString(), " and targets ", targets.DebugString(), " must both be (B, T)");
  Tensor unused;
  LRKV_TRY_ASSIGN(const double loss_sum, ForwardStage(tokens, Tensor(), targets, last_, unused));
  return loss_sum / tokens.numel();
}

absl::Status Decoder::Backward(double loss_scale) {
  LRKV_REQUIRE(last_.logits.defined(), "Decoder::Backward called before Forward");
  Tensor unused;
  return BackwardStage(last_, Tensor(), loss_scale / last_.tokens.numel(), unused);
}

void Decoder::set_recompute(Recompute mode) {
  recompute_ = mode;
  for (auto& block : blocks_) block->attention().set_recompute_core(mode == ATTENTION);
}

absl::StatusOr<KvCache> Decoder::NewCache(int64_t batch, int64_t max_len) const {
  LRKV_REQUIRE(placement_.first_stage && placement_.last_stage, "decoding needs the whole model on each rank (pp = 1)");
  LRKV_REQUIRE(batch > 0 && max_len > 0, "a KV cache needs sequences and positions, got ", batch, " x ", max_len);
  KvCache cache;
  cache.max_len = max_len;
  cache.lengths.assign(batch, 0);
  for (const auto& block : blocks_) {
    std::vector<Tensor> parts;
    for (int64_t width : block->attention().CacheParts()) {
      LRKV_TRY_ASSIGN(Tensor part, Tensor::Zeros({batch, max_len, width}, params_.dtype(), params_.device()));
      parts.push_back(part);
    }
    cache.layers.push_back(std::move(parts));
  }
  return cache;
}

absl::StatusOr<Tensor> Decoder::Extend(KvCache& cache, const std::vector<int64_t>& seqs, const Tensor& tokens) {
  LRKV_REQUIRE(cache.layers.size() == blocks_.size(), "Extend: the cache is of another model");
  LRKV_REQUIRE(tokens.rank() == 2 && tokens.dim(0) == static_cast<int64_t>(seqs.size()) && tokens.dim(1) > 0,
               "Extend: tokens ", tokens.DebugString(), " must be (", seqs.size(), " sequences, n > 0)");
  const int64_t count = tokens.dim(0), n = tokens.dim(1), rows = count * n, d = config_.d_model();
  for (size_t i = 0; i < seqs.size(); ++i) {
    LRKV_REQUIRE(seqs[i] >= 0 && seqs[i] < static_cast<int64_t>(cache.lengths.size()), "Extend: sequence ", seqs[i],
                 " is not in the cache's ", cache.lengths.size());
    LRKV_REQUIRE(cache.lengths[seqs[i]] + n <= cache.max_len, "Extend: sequence ", seqs[i], " would reach ",
                 cache.lengths[seqs[i]] + n, " positions, more than the cache's ", cache.max_len);
    for (size_t j = 0; j < i; ++j) LRKV_REQUIRE(seqs[j] != seqs[i], "Extend: sequence ", seqs[i], " listed twice");
  }
  const DType dt = params_.dtype();
  const Device dev = params_.device();
  LRKV_TRY_ASSIGN(Tensor x, Tensor::Empty({count, n, d}, dt, dev));
  LRKV_TRY_ASSIGN(Tensor flat_x, x.View({rows, d}));
  LRKV_TRY(EmbeddingForward(tokens, embed_->value, flat_x, vocab_begin(), config_.vocab_size()));
  LRKV_TRY(AllReduceOverTp(placement_.tp, flat_x));
  for (size_t i = 0; i < blocks_.size(); ++i) {
    LRKV_TRY_ASSIGN(Tensor y, Tensor::Empty({count, n, d}, dt, dev));
    LRKV_TRY(blocks_[i]->Decode(x, seqs, cache.lengths, cache.layers[i], y));
    x = y;
  }
  for (int64_t s : seqs) cache.lengths[s] += n;
  LRKV_TRY_ASSIGN(Tensor last, x.View({rows, d}));
  LRKV_TRY_ASSIGN(Tensor normed, Tensor::Empty({rows, d}, dt, dev));
  NormActivations unused;
  LRKV_TRY(final_norm_.Forward(last, normed, unused));
  const int64_t v_local = head_->value.dim(0), tp = params_.tp().size;
  LRKV_TRY_ASSIGN(Tensor local, Tensor::Empty({rows, v_local}, dt, dev));
  LRKV_TRY(LinearForwardTransposed(normed, *head_, local, FlopCategory::kLmHead));
  if (tp == 1) return local.View({count, n, v_local});
  // Every rank's vocabulary block (tp, rows, V / tp), then rows of the whole vocabulary.
  LRKV_TRY_ASSIGN(Tensor blocks, Tensor::Empty({tp, rows, v_local}, dt, dev));
  LRKV_TRY(placement_.tp->AllGather(local, blocks));
  LRKV_TRY_ASSIGN(Tensor logits, Tensor::Empty({count, n, tp * v_local}, dt, dev));
  LRKV_TRY_ASSIGN(Tensor dst, logits.View({rows, 1, tp * v_local}));
  for (int64_t r = 0; r < tp; ++r) {  // rank r's block lands at vocabulary columns [r V / tp, ...)
    LRKV_TRY_ASSIGN(Tensor block, blocks.Slice(r, r + 1));
    LRKV_TRY_ASSIGN(block, block.View({rows, 1, v_local}));
    LRKV_TRY(CopyToHeadSlice(block, r * v_local, dst));
  }
  return logits;
}

}  // namespace lrkv
