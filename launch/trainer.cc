#include "launch/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/sampler.h"
#include "data/token_shard.h"
#include "launch/metrics_writer.h"
#include "model/config.h"
#include "model/decoder.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"
#include "runtime/flop_counter.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string Duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return absl::StrFormat("%dh%02dm", t / 3600, t / 60 % 60);
  if (t >= 60) return absl::StrFormat("%dm%02ds", t / 60, t % 60);
  return absl::StrFormat("%ds", t);
}

absl::StatusOr<data::TokenBuffer> LoadShard(const std::string& path, int vocab_size) {
  LRKV_TRY_ASSIGN(data::TokenShard shard, data::ReadTokenShard(path));
  if (shard.vocab_size != vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, " was tokenized with a vocabulary of ", shard.vocab_size,
                                                   " but model.vocab_size is ", vocab_size,
                                                   ": re-run prepare-data with --vocab_size or fix the config"));
  }
  return std::make_shared<const std::vector<int32_t>>(std::move(shard.tokens));
}

// Mean validation loss over the first eval_batches * micro_batch windows of the validation stream
// (fewer when the stream is shorter): the same tokens at every evaluation.
absl::StatusOr<double> Evaluate(Decoder& model, const data::EvalSampler& val, const TrainConfig& t) {
  const int64_t mb = t.micro_batch(), seq = val.seq_len();
  const int64_t windows = std::min<int64_t>(int64_t(t.eval_batches()) * mb, val.num_windows());
  LRKV_TRY_ASSIGN(Tensor tokens, Tensor::Empty({mb, seq}, DType::kI32));
  LRKV_TRY_ASSIGN(Tensor targets, Tensor::Empty({mb, seq}, DType::kI32));
  double total = 0;
  int64_t done = 0;
  while (done < windows) {
    const int64_t rows = std::min(mb, windows - done);
    for (int64_t r = 0; r < rows; ++r) {
      val.Window(done + r, tokens.data<int32_t>() + r * seq, targets.data<int32_t>() + r * seq);
    }
    LRKV_TRY_ASSIGN(Tensor tk, tokens.Slice(0, rows));
    LRKV_TRY_ASSIGN(Tensor tg, targets.Slice(0, rows));
    LRKV_TRY_ASSIGN(const double loss, model.Forward(tk, tg));
    total += loss * rows;
    done += rows;
  }
  return total / windows;
}

}  // namespace

absl::StatusOr<TrainSummary> Train(const RunConfig& config) {
  const ModelConfig& m = config.model();
  const TrainConfig& t = config.train();
  LRKV_TRY(ValidateModelConfig(m));
  LRKV_TRY(ValidateTrainConfig(t));

  // Data first: a missing or corrupt shard fails before the model is built.
  LRKV_TRY_ASSIGN(data::TokenBuffer train_tokens, LoadShard(t.data_dir() + "/train.bin", m.vocab_size()));
  LRKV_TRY_ASSIGN(data::TokenBuffer val_tokens, LoadShard(t.data_dir() + "/val.bin", m.vocab_size()));
  LRKV_TRY_ASSIGN(const data::TrainSampler sampler, data::TrainSampler::Create(train_tokens, m.seq_len(), t.seed()));
  LRKV_TRY_ASSIGN(const data::EvalSampler val, data::EvalSampler::Create(val_tokens, m.seq_len()));

  LRKV_TRY_ASSIGN(std::unique_ptr<Decoder> model, Decoder::Create(m));
  LRKV_TRY(model->params().Initialize(t.seed()));
  LRKV_TRY_ASSIGN(AdamW optimizer, AdamW::Create(model->params(), t));
  std::error_code ec;
  std::filesystem::create_directories(t.out_dir(), ec);
  LRKV_TRY_ASSIGN(MetricsWriter metrics, MetricsWriter::Open(t.metrics_out()));

  const int64_t seq = m.seq_len(), mb = t.micro_batch(), accum = t.global_batch() / mb;
  const int64_t tokens_per_step = int64_t(t.global_batch()) * seq;
  std::printf("lrkv train: %s, %d layers, d_model %d, %d heads, %.2fM parameters, KV cache %lld values/token/layer\n",
              AttentionKindName(m.attention()), m.n_layers(), m.d_model(), m.n_heads(),
              model->params().NumElements() / 1e6, static_cast<long long>(model->KvCacheValuesPerTokenPerLayer()));
  std::printf("  data %s: %zu train / %zu val tokens; %lld steps x %lld tokens (%d seqs x %lld, %lld micro-batches)\n",
              t.data_dir().c_str(), train_tokens->size(), val_tokens->size(), static_cast<long long>(t.steps()),
              static_cast<long long>(tokens_per_step), t.global_batch(), static_cast<long long>(seq),
              static_cast<long long>(accum));
  std::printf("  metrics -> %s\n", t.metrics_out().c_str());
  std::fflush(stdout);

  LRKV_TRY_ASSIGN(Tensor tokens, Tensor::Empty({mb, seq}, DType::kI32));
  LRKV_TRY_ASSIGN(Tensor targets, Tensor::Empty({mb, seq}, DType::kI32));
  TrainSummary summary;
  int64_t flops_cumulative = 0;
  const Clock::time_point start = Clock::now();
  for (int64_t step = 0; step < t.steps(); ++step) {
    const Clock::time_point step_start = Clock::now();
    FlopCounter::Global().Reset();
    LRKV_TRY(model->params().ZeroGrads());
    double loss = 0;
    for (int64_t micro = 0; micro < accum; ++micro) {
      sampler.SampleBatch(step, t.global_batch(), micro * mb, mb, tokens.data<int32_t>(), targets.data<int32_t>());
      LRKV_TRY_ASSIGN(const double micro_loss, model->Forward(tokens, targets));
      LRKV_TRY(model->Backward(1.0 / accum));
      loss += micro_loss / accum;
    }
    if (!std::isfinite(loss)) {
      return absl::InternalError(absl::StrCat("training loss is not finite at step ", step + 1));
    }
    LRKV_TRY_ASSIGN(const double grad_norm, ClipGradNorm(model->params(), t.grad_clip()));
    const double lr = LearningRate(t, step);
    LRKV_TRY(optimizer.Step(lr));
    const int64_t flops_step = FlopCounter::Global().Total();
    flops_cumulative += flops_step;
    const double step_seconds = Seconds(step_start);
    summary.steps = step + 1;
    summary.tokens += tokens_per_step;
    summary.final_loss = loss;

    JsonRecord record;
    record.Add("step", step + 1).Add("loss", loss).Add("lr", lr).Add("grad_norm", grad_norm);
    record.Add("tokens", summary.tokens).Add("tokens_per_s", tokens_per_step / step_seconds);
    record.Add("step_time_s", step_seconds).Add("flops_step", flops_step).Add("flops_cumulative", flops_cumulative);
    const bool last = step + 1 == t.steps();
    const bool eval = last || (t.eval_every() > 0 && (step + 1) % t.eval_every() == 0);
    std::string val_text;
    if (eval) {
      LRKV_TRY_ASSIGN(summary.final_val_loss, Evaluate(*model, val, t));
      record.Add("val_loss", summary.final_val_loss);
      val_text = absl::StrFormat(" | val_loss %.4f", summary.final_val_loss);
    }
    LRKV_TRY(metrics.Write(record));
    if (eval || last || (step + 1) % t.log_every() == 0 || step == 0) {
      const double elapsed = Seconds(start);
      const double eta = elapsed / (step + 1) * (t.steps() - step - 1);
      std::printf("step %5lld/%lld | loss %.4f | lr %.2e | grad_norm %.3f | %6.0f tok/s | ETA %s%s\n",
                  static_cast<long long>(step + 1), static_cast<long long>(t.steps()), loss, lr, grad_norm,
                  tokens_per_step / step_seconds, Duration(eta).c_str(), val_text.c_str());
      std::fflush(stdout);
    }
  }
  summary.seconds = Seconds(start);

  JsonRecord s;
  s.Add("attention", std::string(AttentionKindName(m.attention()))).Add("params", model->params().NumElements());
  s.Add("steps", summary.steps).Add("tokens", summary.tokens).Add("final_loss", summary.final_loss);
  s.Add("final_val_loss", summary.final_val_loss).Add("seconds", summary.seconds);
  s.Add("flops_cumulative", flops_cumulative);
  LRKV_TRY(WriteJsonFile(t.out_dir() + "/summary.json", s));
  std::printf("done: %lld steps, %lld tokens in %s | final loss %.4f | val_loss %.4f | summary -> %s/summary.json\n",
              static_cast<long long>(summary.steps), static_cast<long long>(summary.tokens),
              Duration(summary.seconds).c_str(), summary.final_loss, summary.final_val_loss, t.out_dir().c_str());
  return summary;
}

}  // namespace lrkv
