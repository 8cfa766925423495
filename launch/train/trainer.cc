#include "launch/train/trainer.h"

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
#include "launch/train/checkpointing.h"
#include "launch/device_peaks.h"
#include "launch/train/evaluation.h"
#include "launch/train/memory_check.h"
#include "launch/train/metrics_writer.h"
#include "launch/train/nonfinite_steps.h"
#include "launch/train/parameter_report.h"
#include "launch/train/peak_flops.h"
#include "launch/train/stop_signals.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/decoder_stage.h"
#include "model/flop_model.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"
#include "parallel/agreement.h"
#include "parallel/data_parallel.h"
#include "parallel/mesh.h"
#include "parallel/pipeline_schedule.h"
#include "runtime/directory_lock.h"
#include "runtime/flop_counter.h"
#include "runtime/status.h"
#include "runtime/test_hooks.h"

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

absl::StatusOr<data::TokenBuffer> LoadShard(const std::string& path, int vocab_size, uint32_t* fingerprint) {
  LRKV_TRY_ASSIGN(data::TokenShard shard, data::ReadTokenShard(path));
  LRKV_REQUIRE(*fingerprint == 0 || shard.tokenizer_fingerprint == 0 || shard.tokenizer_fingerprint == *fingerprint,
               path, " was made by another tokenizer than the other shard of ", std::filesystem::path(path).parent_path().string(),
               ": re-run prepare-data");
  if (shard.tokenizer_fingerprint != 0) *fingerprint = shard.tokenizer_fingerprint;
  if (shard.vocab_size != vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, " was tokenized with a vocabulary of ", shard.vocab_size,
                                                   " but model.vocab_size is ", vocab_size,
                                                   ": re-run prepare-data with --vocab_size or fix the config"));
  }
  return std::make_shared<const std::vector<int32_t>>(std::move(shard.tokens));
}

// The groups whose traffic the metrics report, in order, with their names.
std::vector<Communicator*> LoggedGroups(ProcessMesh& mesh) {
  return {&mesh.tp(), &mesh.pp(), &mesh.dp(), mesh.pp_ends()};
}
constexpr const char* kLoggedGroupNames[] = {"tp", "pp", "dp", "pp_ends"};
constexpr int kKinds = static_cast<int>(CommKind::kCount);

}  // namespace

absl::StatusOr<TrainSummary> Train(const RunConfig& config, MpiCommunicator& world) {
  const ModelConfig& m = config.model();
  const TrainConfig& t = config.train();
  const ParallelConfig& par = config.parallel();
  // Everything is checked before any work, identically on every rank, and the ranks agree on the
  // outcome, so a bad layout, config or data file stops every rank with the same message.
  // A stop signal during start-up is kept and honoured at the first step.
  InstallStopSignalHandlers();
  const Layout layout{par.dp(), par.pp(), par.tp()};
  const bool lead = world.rank() == 0;  // prints and writes files
  data::TokenBuffer train_tokens, val_tokens;
  uint32_t tokenizer_fingerprint = 0;
  double peak_flops = t.peak_flops();
  std::vector<DirectoryLock> locks;  // held by rank 0 for the job's life
  absl::Status checks = [&]() -> absl::Status {
    if (peak_flops <= 0 && !t.peak_device().empty()) {
      LRKV_TRY_ASSIGN(const double device, LookupDevicePeak(t.peak_device()));
      peak_flops = device * world.size();
    }
    LRKV_TRY(ValidateLayout(layout, world.size()));
    LRKV_TRY(ValidateModelConfig(m));
    LRKV_TRY(ValidateTrainConfig(t));
    LRKV_TRY(ValidateParallelConfig(config));
    LRKV_TRY_ASSIGN(train_tokens, LoadShard(t.data_dir() + "/train.bin", m.vocab_size(), &tokenizer_fingerprint));
    LRKV_TRY_ASSIGN(val_tokens, LoadShard(t.data_dir() + "/val.bin", m.vocab_size(), &tokenizer_fingerprint));
    if (!lead) return absl::OkStatus();
    // One job per directory: a second job writing the same files would interleave them.
    LRKV_TRY_ASSIGN(DirectoryLock out_lock, DirectoryLock::Acquire(t.out_dir(), "run directory", "--out_dir"));
    locks.push_back(std::move(out_lock));
    if (!t.checkpoint_dir().empty()) {
      std::error_code ec;
      if (!std::filesystem::equivalent(t.checkpoint_dir(), t.out_dir(), ec)) {
        LRKV_TRY_ASSIGN(DirectoryLock ck_lock, DirectoryLock::Acquire(t.checkpoint_dir(), "checkpoint directory", "--checkpoint_dir"));
        locks.push_back(std::move(ck_lock));
      }
      LRKV_TRY(CheckCheckpointDirectory(t));
    }
    return absl::OkStatus();
  }();
  LRKV_TRY(AgreeOnStatus(world, checks));
  LRKV_TRY(AgreeOnStatus(world, CheckMemoryFits(config, world.comm())));
  if (lead) LRKV_TRY(RemoveOldCheckpoints(t));
  LRKV_TRY_ASSIGN(std::unique_ptr<ProcessMesh> mesh, ProcessMesh::Create(world, layout));
  Communicator& dp = mesh->dp();
  LRKV_TRY_ASSIGN(const data::TrainSampler sampler, data::TrainSampler::Create(train_tokens, m.seq_len(), t.seed()));
  LRKV_TRY_ASSIGN(const data::EvalSampler val, data::EvalSampler::Create(val_tokens, m.seq_len()));

  // This rank's part of the model: its pipeline stage's layers, its tensor-parallel blocks. Every
  // block is initialised from the same seed by global element index, so the model is the one a
  // single process would build.
  ModelPlacement placement;
  placement.tp_rank = {mesh->tp_index(), par.tp()};
  placement.tp = par.tp() > 1 ? &mesh->tp() : nullptr;
  SplitRange(m.n_layers(), par.pp(), mesh->pp_index(), &placement.first_layer, &placement.end_layer);
  placement.first_stage = mesh->first_stage();
  placement.last_stage = mesh->last_stage();
  LRKV_TRY_ASSIGN(std::unique_ptr<Decoder> model, Decoder::Create(m, placement));
  LRKV_TRY(model->params().Initialize(t.seed()));

  // Gradient groups: replicated parameters with partial gradients are summed over TP; tied
  // embeddings held by both pipeline ends are summed over those two ranks.
  std::vector<Tensor*> values, grads, tp_partial_grads, tied_grads;
  const bool tied_copy = m.tie_embeddings() && par.pp() > 1;
  for (const auto& p : model->params().all()) {
    values.push_back(&p->value), grads.push_back(&p->grad);
    if (p->spec.tp == TpSplit::kReplicatedPartialGrad && par.tp() > 1) tp_partial_grads.push_back(&p->grad);
    if (tied_copy && p->spec.name == "embed.weight") tied_grads.push_back(&p->grad);
  }
  // Each gradient element counts once in the global norm: on its primary copy, and without ZeRO-1
  // (every DP rank holds the full averaged gradient) on DP rank 0.
  auto counts_in_norm = [&](const Parameter& p) {
    return model->IsPrimaryCopy(p) && (par.zero1() || mesh->dp_index() == 0);
  };
  std::optional<Zero1Partition> zero1;
  std::vector<ParamPiece> pieces = WholeParameters(model->params());
  if (par.zero1()) {
    LRKV_TRY_ASSIGN(zero1, Zero1Partition::Create(values, dp.size(), dp.rank()));
    pieces.clear();
    for (const auto& piece : zero1->pieces()) {
      pieces.push_back({model->params().all()[piece.index].get(), piece.begin, piece.end});
    }
  }
  for (ParamPiece& piece : pieces) piece.in_grad_norm = counts_in_norm(*piece.param);
  LRKV_TRY_ASSIGN(AdamW optimizer, AdamW::Create(pieces, t));
  if (t.print_layout()) LRKV_TRY(PrintLayout(model->params(), *mesh));
  Progress progress;
  if (t.resume()) {
    const Clock::time_point load_start = Clock::now();
    LRKV_TRY_ASSIGN(progress, Resume(config, tokenizer_fingerprint, *model, optimizer, *mesh));
    std::vector<double> loaded = {double(progress.loaded_bytes)};
    LRKV_TRY(SumOverGroup(world, loaded));
    const double seconds = Seconds(load_start);
    if (lead && progress.checkpoint.empty()) {
      std::printf("  no checkpoint in %s yet: starting at step 0\n", t.checkpoint_dir().c_str());
    } else if (lead) {
      if (!progress.note.empty()) std::printf("  warning: %s\n", progress.note.c_str());
      std::printf("  resumed from %s: step %lld, %lld tokens; read %.1f MB in %.2f s (%.0f MB/s, all ranks)\n",
                  progress.checkpoint.c_str(),
                  static_cast<long long>(progress.step), static_cast<long long>(progress.tokens), loaded[0] / 1e6,
                  seconds, loaded[0] / 1e6 / seconds);
    }
  }
  std::unique_ptr<MetricsWriter> metrics;
  if (lead) {
    std::error_code ec;
    std::filesystem::create_directories(t.out_dir(), ec);
    const bool metrics_existed = t.resume() && std::filesystem::exists(t.metrics_out(), ec);
    // Resuming keeps the records of the steps the checkpoint covers and drops any later ones.
    LRKV_TRY_ASSIGN(MetricsWriter writer, MetricsWriter::Open(t.metrics_out(), t.resume() ? progress.step : -1));
    metrics = std::make_unique<MetricsWriter>(std::move(writer));
    // A run killed after committing checkpoint K and before writing K's record gets the record back.
    if (metrics_existed && metrics->last_step() < progress.step && !progress.metrics_record.empty()) {
      LRKV_TRY(metrics->WriteLine(progress.metrics_record));
      std::printf("  metrics: step %lld's record restored from the checkpoint\n", static_cast<long long>(progress.step));
    }
  }

  const ModelCost cost = AnalyzeModel(m);
  const int64_t seq = m.seq_len(), mb = t.micro_batch();
  int64_t first = 0, rows = 0;  // this DP rank's slice of every global batch
  data::RankSlice(t.global_batch(), mesh->dp_index(), par.dp(), &first, &rows);
  const int accum = static_cast<int>(rows / mb);
  const int64_t tokens_per_step = int64_t(t.global_batch()) * seq;
  if (lead) {
    std::printf("lrkv train: %s, %d layers, d_model %d, %d heads, %.2fM parameters, KV cache %lld values/token/layer\n",
                AttentionKindName(m.attention()), m.n_layers(), m.d_model(), m.n_heads(), cost.params_total / 1e6,
                static_cast<long long>(cost.kv_cache_values_per_token_per_layer));
    std::printf("  layout %s%s on %d ranks (%s schedule); %lld steps x %lld tokens (%d seqs x %lld; %d micro-batches of %lld per pipeline)\n",
                mesh->layout().ToString().c_str(), par.zero1() ? " + ZeRO-1" : "", world.size(),
                par.schedule() == GPIPE ? "GPipe" : "1F1B", static_cast<long long>(t.steps()),
                static_cast<long long>(tokens_per_step), t.global_batch(), static_cast<long long>(seq), accum,
                static_cast<long long>(mb));
    std::printf("  data %s: %zu train / %zu val tokens; metrics -> %s\n", t.data_dir().c_str(), train_tokens->size(),
                val_tokens->size(), t.metrics_out().c_str());
    std::fflush(stdout);
  }

  const bool measured_peak = peak_flops <= 0;
  if (measured_peak) {
    LRKV_TRY_ASSIGN(peak_flops, MeasureJobPeakFlops(world, 0.5));
  }
  if (lead) {
    std::printf("  MFU against %.1f GFLOP/s (%s)\n", peak_flops / 1e9,
                measured_peak         ? "fp32 GEMM peak measured on every rank"
                : t.peak_flops() > 0 ? "train.peak_flops"
                                     : absl::StrCat(world.size(), " x train.peak_device ", t.peak_device()).c_str());
  }

  // Each token's loss weighs 1 / (tokens on this DP rank); the DP average then makes the gradient
  // that of the mean loss over the global batch.
  const double loss_scale = 1.0 / (double(rows) * seq);
  int64_t step = 0;
  DecoderStage stage(
      *model, [&](int) { return mb; },
      [&](int micro, int32_t* tokens, int32_t* targets) {
        sampler.SampleBatch(step, t.global_batch(), first + micro * mb, mb, tokens, targets);
      },
      loss_scale, /*backward=*/true);
  const PipelineSchedule schedule = par.schedule() == GPIPE ? PipelineSchedule::kGPipe : PipelineSchedule::k1F1B;
  const std::vector<Communicator*> groups = LoggedGroups(*mesh);
  int skipped_steps = 0;
  TrainSummary summary;
  summary.steps = progress.step, summary.tokens = progress.tokens, summary.final_loss = progress.last_loss;
  int64_t flops_cumulative = progress.flops_cumulative;
  const Clock::time_point start = Clock::now();
  for (step = progress.step; step < t.steps(); ++step) {
    const Clock::time_point step_start = Clock::now();
    FlopCounter::Global().Reset();
    for (Communicator* g : groups) {
      if (g) g->stats().Reset();
    }
    LRKV_TRY(model->params().ZeroGrads());
    LRKV_TRY(RunPipeline(schedule, mesh->pp(), stage, accum));
    if (world.rank() == 0 && NanGradientStepForTests(step + 1)) PoisonFirstGradient(model->params());
    // Gradients: partial sums completed over TP and the pipeline ends, then the mean over the
    // global batch on every DP rank (or on its ZeRO-1 shard).
    LRKV_TRY(AllReduceInBuckets(mesh->tp(), tp_partial_grads, par.bucket_bytes(), 1.0));
    if (mesh->pp_ends()) LRKV_TRY(AllReduceInBuckets(*mesh->pp_ends(), tied_grads, par.bucket_bytes(), 1.0));
    if (zero1) {
      LRKV_TRY(zero1->ReduceScatterGradients(dp, grads));
    } else {
      LRKV_TRY(AllReduceInBuckets(dp, grads, par.bucket_bytes(), 1.0 / dp.size()));
    }
    std::vector<double> norm_sq = {0.0};
    LRKV_TRY_ASSIGN(norm_sq[0], optimizer.GradSumSquares());
    LRKV_TRY(SumOverGroup(world, norm_sq));
    const double grad_norm = std::sqrt(norm_sq[0]);
    const double lr = LearningRate(t, step);
    // A non-finite gradient (a non-finite loss makes every gradient so) is never applied.
    const bool skip = !std::isfinite(grad_norm);
    if (skip) {
      LRKV_TRY(RefuseNonFiniteStep(optimizer, world, t, step + 1, grad_norm, ++skipped_steps));
    } else {
      LRKV_TRY(optimizer.Step(lr, ClipScale(grad_norm, t.grad_clip())));
      if (zero1) LRKV_TRY(zero1->AllGatherParameters(dp, values));
    }
    // Job totals: loss sum, FLOPs, and the step's bytes per (group, kind), summed over all ranks.
    const double step_loss_sum = stage.TakeLossSum();
    std::vector<double> totals = {ReportsLoss(*mesh) ? step_loss_sum : 0.0,
                                  double(FlopCounter::Global().Total())};
    for (Communicator* g : groups) {
      for (int k = 0; k < kKinds; ++k) totals.push_back(g ? double(g->stats().bytes[k]) : 0.0);
    }
    totals.push_back(StopSignal());  // any rank's stop signal stops every rank at this step
    LRKV_TRY(SumOverGroup(world, totals));
    const double loss = totals[0] / tokens_per_step;
    const bool stop = totals.back() > 0;
    const int64_t flops_step = static_cast<int64_t>(totals[1]);
    flops_cumulative += flops_step;
    const double step_seconds = Seconds(step_start);
    summary.steps = step + 1;
    summary.tokens += tokens_per_step;
    summary.final_loss = loss;

    const bool last = step + 1 == t.steps() || stop;
    const bool eval = last || (t.eval_every() > 0 && (step + 1) % t.eval_every() == 0);
    if (eval) {
      LRKV_TRY_ASSIGN(summary.final_val_loss, Evaluate(*model, val, t, *mesh));
    }
    // The step's record, complete but for the checkpoint's figures: the checkpoint keeps a copy, so
    // the metrics file can always be brought up to the checkpoint's step.
    JsonRecord record;
    record.Add("step", step + 1).Add("loss", loss).Add("lr", lr).Add("grad_norm", grad_norm);
    record.Add("tokens", summary.tokens).Add("tokens_per_s", tokens_per_step / step_seconds);
    record.Add("step_time_s", step_seconds).Add("flops_step", flops_step).Add("flops_cumulative", flops_cumulative);
    record.Add("flops_per_s", flops_step / step_seconds).Add("mfu", flops_step / step_seconds / peak_flops);
    for (size_t g = 0; g < groups.size(); ++g) {
      for (int k = 0; k < kKinds; ++k) {
        const int64_t bytes = static_cast<int64_t>(totals[2 + g * kKinds + k]);
        if (bytes > 0) record.Add(absl::StrCat("comm_bytes_", kLoggedGroupNames[g], "_", CommKindName(CommKind(k))), bytes);
      }
    }
    if (skip) record.Add("skipped", int64_t(1));
    if (eval) record.Add("val_loss", summary.final_val_loss);
    // Checkpoint: every save_every steps and at the end. The step waits for it (the stall).
    double checkpoint_seconds = -1;
    std::vector<double> checkpoint_bytes = {0.0};
    if (!t.checkpoint_dir().empty() && (last || (t.save_every() > 0 && (step + 1) % t.save_every() == 0))) {
      const Clock::time_point save_start = Clock::now();
      Progress now;
      now.step = step + 1, now.tokens = summary.tokens, now.flops_cumulative = flops_cumulative, now.last_loss = loss;
      now.metrics_record = record.ToString(), now.tokenizer_fingerprint = tokenizer_fingerprint;
      LRKV_TRY_ASSIGN(const int64_t written, SaveTrainingCheckpoint(config, now, *model, optimizer, *mesh));
      checkpoint_seconds = Seconds(save_start);
      checkpoint_bytes = {double(written)};
      LRKV_TRY(SumOverGroup(world, checkpoint_bytes));
    }
    if (!lead) {
      if (stop) break;
      continue;
    }
    std::string val_text;
    if (checkpoint_seconds >= 0) {
      record.Add("checkpoint_seconds", checkpoint_seconds).Add("checkpoint_bytes", int64_t(checkpoint_bytes[0]));
      val_text = absl::StrFormat(" | saved %s (%.2fs)", CheckpointName(step + 1), checkpoint_seconds);
    }
    if (eval) val_text += absl::StrFormat(" | val_loss %.4f", summary.final_val_loss);
    LRKV_TRY(metrics->Write(record));
    if (eval || checkpoint_seconds >= 0 || (step + 1) % t.log_every() == 0 || step == progress.step) {
      const double elapsed = Seconds(start);
      const double eta = elapsed / double(step + 1 - progress.step) * double(t.steps() - step - 1);
      std::printf("step %5lld/%lld | loss %.4f | lr %.2e | grad_norm %.3f | %6.0f tok/s | MFU %4.1f%% | ETA %s%s\n",
                  static_cast<long long>(step + 1), static_cast<long long>(t.steps()), loss, lr, grad_norm,
                  tokens_per_step / step_seconds, 100.0 * flops_step / step_seconds / peak_flops,
                  Duration(eta).c_str(), val_text.c_str());
      std::fflush(stdout);
    }
    if (stop) break;
  }
  summary.seconds = Seconds(start);
  if (summary.steps < t.steps()) {
    ClearStopSignal();
    if (lead) {
      std::printf("stopped by SIGTERM/SIGINT/SIGUSR1 after step %lld of %lld%s\n", static_cast<long long>(summary.steps),
                  static_cast<long long>(t.steps()),
                  t.checkpoint_dir().empty() ? " (no --checkpoint_dir: nothing saved)"
                                             : absl::StrCat("; resume with --resume from ", t.checkpoint_dir()).c_str());
    }
  }
  if (!t.save_params_dir().empty()) LRKV_TRY(SaveGlobalParameters(t.save_params_dir(), *model, *mesh));
  if (!lead) return summary;

  JsonRecord s;
  s.Add("attention", std::string(AttentionKindName(m.attention()))).Add("params", cost.params_total);
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
