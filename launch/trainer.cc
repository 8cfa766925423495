#include "launch/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/sampler.h"
#include "data/token_shard.h"
#include "launch/metrics_writer.h"
#include "launch/peak_flops.h"
#include "model/config.h"
#include "model/decoder.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"
#include "parallel/data_parallel.h"
#include "parallel/mesh.h"
#include "runtime/flop_counter.h"
#include "runtime/npy.h"
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

// Sum over the group of a few doubles (loss sums and counts).
absl::Status SumOver(Communicator& comm, std::vector<double>& values) {
  if (comm.size() == 1) return absl::OkStatus();
  LRKV_TRY_ASSIGN(Tensor t, Tensor::Empty({int64_t(values.size())}, DType::kF64));
  std::copy(values.begin(), values.end(), t.data<double>());
  LRKV_TRY(comm.AllReduce(t));
  std::copy(t.data<double>(), t.data<double>() + values.size(), values.begin());
  return absl::OkStatus();
}

// Mean validation loss over the first eval_batches * global_batch windows of the validation stream
// (fewer when the stream is shorter): the same tokens at every evaluation and for every layout,
// split over the DP ranks and run in micro-batches.
absl::StatusOr<double> Evaluate(Decoder& model, const data::EvalSampler& val, const TrainConfig& t, Communicator& dp) {
  const int64_t mb = t.micro_batch(), seq = val.seq_len();
  const int64_t windows = std::min<int64_t>(int64_t(t.eval_batches()) * t.global_batch(), val.num_windows());
  int64_t first = 0, count = 0;
  data::RankSlice(windows, dp.rank(), dp.size(), &first, &count);
  LRKV_TRY_ASSIGN(Tensor tokens, Tensor::Empty({mb, seq}, DType::kI32));
  LRKV_TRY_ASSIGN(Tensor targets, Tensor::Empty({mb, seq}, DType::kI32));
  std::vector<double> sums = {0.0};
  for (int64_t done = 0; done < count;) {
    const int64_t rows = std::min(mb, count - done);
    for (int64_t r = 0; r < rows; ++r) {
      val.Window(first + done + r, tokens.data<int32_t>() + r * seq, targets.data<int32_t>() + r * seq);
    }
    LRKV_TRY_ASSIGN(Tensor tk, tokens.Slice(0, rows));
    LRKV_TRY_ASSIGN(Tensor tg, targets.Slice(0, rows));
    LRKV_TRY_ASSIGN(const double loss, model.Forward(tk, tg));
    sums[0] += loss * rows;
    done += rows;
  }
  LRKV_TRY(SumOver(dp, sums));
  return sums[0] / windows;
}

// Rank 0 prints every rank's parameters (name, local shape), gathered as bytes in rank order.
absl::Status PrintLayout(const ParameterSet& params, const ProcessMesh& mesh, MpiCommunicator& world) {
  std::string text = absl::StrFormat("rank %d (dp %d, pp %d, tp %d): %.3fM parameters\n", world.rank(),
                                     mesh.dp_index(), mesh.pp_index(), mesh.tp_index(), params.NumElements() / 1e6);
  for (const auto& p : params.all()) {
    absl::StrAppendFormat(&text, "  %-32s %s\n", p->spec.name, ShapeString(p->value.shape()));
  }
  LRKV_TRY_ASSIGN(Tensor length, Tensor::Empty({1}, DType::kI32));
  length.data<int32_t>()[0] = static_cast<int32_t>(text.size());
  LRKV_TRY_ASSIGN(Tensor lengths, Tensor::Empty({world.size()}, DType::kI32));
  LRKV_TRY(world.AllGather(length, lengths));
  for (int r = 0; r < world.size(); ++r) {
    const int32_t n = lengths.data<int32_t>()[r];
    LRKV_TRY_ASSIGN(Tensor bytes, Tensor::Zeros({(n + 3) / 4}, DType::kI32));
    if (r == world.rank()) std::copy(text.begin(), text.end(), static_cast<char*>(bytes.raw()));
    if (r != 0 && world.rank() == r) LRKV_TRY(world.Send(bytes, 0));
    if (r != 0 && world.rank() == 0) LRKV_TRY(world.Recv(bytes, r));
    if (world.rank() == 0) std::fwrite(bytes.raw(), 1, n, stdout);
  }
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainSummary> Train(const RunConfig& config, MpiCommunicator& world) {
  const ModelConfig& m = config.model();
  const TrainConfig& t = config.train();
  const ParallelConfig& par = config.parallel();
  // Everything is checked before any work, identically on every rank.
  const Layout layout{par.dp(), par.pp(), par.tp()};
  LRKV_TRY(ValidateLayout(layout, world.size()));
  LRKV_TRY(ValidateModelConfig(m));
  LRKV_TRY(ValidateTrainConfig(t));
  LRKV_TRY(ValidateParallelConfig(config));
  LRKV_TRY_ASSIGN(std::unique_ptr<ProcessMesh> mesh, ProcessMesh::Create(world, layout));
  Communicator& dp = mesh->dp();
  const bool lead = world.rank() == 0;  // prints and writes files

  // Data first: a missing or corrupt shard fails before the model is built.
  LRKV_TRY_ASSIGN(data::TokenBuffer train_tokens, LoadShard(t.data_dir() + "/train.bin", m.vocab_size()));
  LRKV_TRY_ASSIGN(data::TokenBuffer val_tokens, LoadShard(t.data_dir() + "/val.bin", m.vocab_size()));
  LRKV_TRY_ASSIGN(const data::TrainSampler sampler, data::TrainSampler::Create(train_tokens, m.seq_len(), t.seed()));
  LRKV_TRY_ASSIGN(const data::EvalSampler val, data::EvalSampler::Create(val_tokens, m.seq_len()));

  // Every rank builds the same model from the same seed.
  LRKV_TRY_ASSIGN(std::unique_ptr<Decoder> model, Decoder::Create(m));
  LRKV_TRY(model->params().Initialize(t.seed()));
  std::vector<Tensor*> values, grads;
  for (const auto& p : model->params().all()) values.push_back(&p->value), grads.push_back(&p->grad);
  std::optional<Zero1Partition> zero1;
  std::vector<ParamPiece> pieces = WholeParameters(model->params());
  if (par.zero1()) {
    LRKV_TRY_ASSIGN(zero1, Zero1Partition::Create(values, dp.size(), dp.rank()));
    pieces.clear();
    for (const auto& piece : zero1->pieces()) {
      pieces.push_back({model->params().all()[piece.index].get(), piece.begin, piece.end});
    }
  }
  LRKV_TRY_ASSIGN(AdamW optimizer, AdamW::Create(pieces, t));
  if (t.print_layout()) LRKV_TRY(PrintLayout(model->params(), *mesh, world));
  std::unique_ptr<MetricsWriter> metrics;
  if (lead) {
    std::error_code ec;
    std::filesystem::create_directories(t.out_dir(), ec);
    LRKV_TRY_ASSIGN(MetricsWriter writer, MetricsWriter::Open(t.metrics_out()));
    metrics = std::make_unique<MetricsWriter>(std::move(writer));
  }

  const int64_t seq = m.seq_len(), mb = t.micro_batch();
  int64_t first = 0, rows = 0;  // this DP rank's slice of every global batch
  data::RankSlice(t.global_batch(), dp.rank(), dp.size(), &first, &rows);
  const int64_t accum = rows / mb;
  const int64_t tokens_per_step = int64_t(t.global_batch()) * seq;
  if (lead) {
    std::printf("lrkv train: %s, %d layers, d_model %d, %d heads, %.2fM parameters, KV cache %lld values/token/layer\n",
                AttentionKindName(m.attention()), m.n_layers(), m.d_model(), m.n_heads(),
                model->params().NumElements() / 1e6, static_cast<long long>(model->KvCacheValuesPerTokenPerLayer()));
    std::printf("  layout %s%s on %d ranks; %lld steps x %lld tokens (%d seqs x %lld; %lld micro-batches of %lld per rank)\n",
                mesh->layout().ToString().c_str(), par.zero1() ? " + ZeRO-1" : "", world.size(),
                static_cast<long long>(t.steps()), static_cast<long long>(tokens_per_step), t.global_batch(),
                static_cast<long long>(seq), static_cast<long long>(accum), static_cast<long long>(mb));
    std::printf("  data %s: %zu train / %zu val tokens; metrics -> %s\n", t.data_dir().c_str(), train_tokens->size(),
                val_tokens->size(), t.metrics_out().c_str());
    std::fflush(stdout);
  }

  double peak_flops = t.peak_flops();
  if (peak_flops <= 0) {
    LRKV_TRY_ASSIGN(peak_flops, MeasureJobPeakFlops(world, 0.5));
  }
  if (lead) {
    std::printf("  MFU against %.1f GFLOP/s (%s)\n", peak_flops / 1e9,
                t.peak_flops() > 0 ? "train.peak_flops" : "fp32 GEMM peak measured on every rank");
  }

  LRKV_TRY_ASSIGN(Tensor tokens, Tensor::Empty({mb, seq}, DType::kI32));
  LRKV_TRY_ASSIGN(Tensor targets, Tensor::Empty({mb, seq}, DType::kI32));
  TrainSummary summary;
  int64_t flops_cumulative = 0;
  const Clock::time_point start = Clock::now();
  for (int64_t step = 0; step < t.steps(); ++step) {
    const Clock::time_point step_start = Clock::now();
    FlopCounter::Global().Reset();
    dp.stats().Reset();
    LRKV_TRY(model->params().ZeroGrads());
    // (loss sum, FLOPs) over the rank's micro-batches; losses are means over each micro-batch.
    std::vector<double> totals = {0.0, 0.0};
    for (int64_t micro = 0; micro < accum; ++micro) {
      sampler.SampleBatch(step, t.global_batch(), first + micro * mb, mb, tokens.data<int32_t>(),
                          targets.data<int32_t>());
      LRKV_TRY_ASSIGN(const double micro_loss, model->Forward(tokens, targets));
      LRKV_TRY(model->Backward(1.0 / accum));
      totals[0] += micro_loss * mb;
    }
    // Gradients: the mean over the global batch on every rank (or on its ZeRO-1 shard).
    if (zero1) {
      LRKV_TRY(zero1->ReduceScatterGradients(dp, grads));
    } else {
      LRKV_TRY(GradientAllReduce(dp, grads, par.bucket_bytes()));
    }
    std::vector<double> norm_sq = {0.0};
    LRKV_TRY_ASSIGN(norm_sq[0], optimizer.GradSumSquares());
    if (zero1) LRKV_TRY(SumOver(dp, norm_sq));  // shards are disjoint
    const double grad_norm = std::sqrt(norm_sq[0]);
    const double clip = ClipScale(grad_norm, t.grad_clip());
    const double lr = LearningRate(t, step);
    LRKV_TRY(optimizer.Step(lr, clip));
    if (zero1) LRKV_TRY(zero1->AllGatherParameters(dp, values));
    totals[1] = double(FlopCounter::Global().Total());
    const CommStats comm = dp.stats();  // this step's gradient traffic, before the logging sums
    LRKV_TRY(SumOver(dp, totals));
    const double loss = totals[0] / t.global_batch();
    if (!std::isfinite(loss)) {
      return absl::InternalError(absl::StrCat("training loss is not finite at step ", step + 1));
    }
    const int64_t flops_step = static_cast<int64_t>(totals[1]);
    flops_cumulative += flops_step;
    const double step_seconds = Seconds(step_start);
    summary.steps = step + 1;
    summary.tokens += tokens_per_step;
    summary.final_loss = loss;

    const bool last = step + 1 == t.steps();
    const bool eval = last || (t.eval_every() > 0 && (step + 1) % t.eval_every() == 0);
    if (eval) {
      LRKV_TRY_ASSIGN(summary.final_val_loss, Evaluate(*model, val, t, dp));
    }
    if (!lead) continue;
    JsonRecord record;
    record.Add("step", step + 1).Add("loss", loss).Add("lr", lr).Add("grad_norm", grad_norm);
    record.Add("tokens", summary.tokens).Add("tokens_per_s", tokens_per_step / step_seconds);
    record.Add("step_time_s", step_seconds).Add("flops_step", flops_step).Add("flops_cumulative", flops_cumulative);
    record.Add("flops_per_s", flops_step / step_seconds).Add("mfu", flops_step / step_seconds / peak_flops);
    for (int k = 0; k < static_cast<int>(CommKind::kCount); ++k) {
      if (comm.calls[k] > 0) record.Add(absl::StrCat("comm_bytes_dp_", CommKindName(CommKind(k))), comm.bytes[k]);
    }
    std::string val_text;
    if (eval) {
      record.Add("val_loss", summary.final_val_loss);
      val_text = absl::StrFormat(" | val_loss %.4f", summary.final_val_loss);
    }
    LRKV_TRY(metrics->Write(record));
    if (eval || (step + 1) % t.log_every() == 0 || step == 0) {
      const double elapsed = Seconds(start);
      const double eta = elapsed / (step + 1) * (t.steps() - step - 1);
      std::printf("step %5lld/%lld | loss %.4f | lr %.2e | grad_norm %.3f | %6.0f tok/s | MFU %4.1f%% | ETA %s%s\n",
                  static_cast<long long>(step + 1), static_cast<long long>(t.steps()), loss, lr, grad_norm,
                  tokens_per_step / step_seconds, 100.0 * flops_step / step_seconds / peak_flops,
                  Duration(eta).c_str(), val_text.c_str());
      std::fflush(stdout);
    }
  }
  summary.seconds = Seconds(start);
  if (!lead) return summary;
  if (!t.save_params_dir().empty()) {
    std::error_code ec;
    std::filesystem::create_directories(t.save_params_dir(), ec);
    for (const auto& p : model->params().all()) {
      LRKV_TRY(WriteNpy(t.save_params_dir() + "/" + p->spec.name + ".npy", p->value));
    }
  }

  JsonRecord s;
  s.Add("attention", std::string(AttentionKindName(m.attention()))).Add("params", model->params().NumElements());
  s.Add("layout", mesh->layout().ToString()).Add("steps", summary.steps).Add("tokens", summary.tokens);
  s.Add("final_loss", summary.final_loss).Add("final_val_loss", summary.final_val_loss).Add("seconds", summary.seconds);
  s.Add("flops_cumulative", flops_cumulative);
  LRKV_TRY(WriteJsonFile(t.out_dir() + "/summary.json", s));
  std::printf("done: %lld steps, %lld tokens in %s | final loss %.4f | val_loss %.4f | summary -> %s/summary.json\n",
              static_cast<long long>(summary.steps), static_cast<long long>(summary.tokens),
              Duration(summary.seconds).c_str(), summary.final_loss, summary.final_val_loss, t.out_dir().c_str());
  return summary;
}

}  // namespace lrkv
