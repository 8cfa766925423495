#include "launch/train/trainer.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "data/sampler.h"
#include "data/token_shard.h"
#include "launch/train/checkpointing.h"
#include "launch/reports/device_peaks.h"
#include "launch/train/evaluation.h"
#include "launch/train/memory_check.h"
#include "launch/train/metrics_writer.h"
#include "launch/train/nonfinite_steps.h"
#include "launch/train/parameter_report.h"
#include "launch/train/peak_flops.h"
#include "launch/train/stop_signals.h"
#include "launch/train/training_device.h"
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
#include "runtime/allocator.h"
#include "runtime/cpu_target.h"
#include "runtime/directory_lock.h"
#include "runtime/flop_counter.h"
#include "runtime/ops/gemm.h"
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

// The groups whose traffic the metrics report, in order, with their names.
constexpr const char* kLoggedGroupNames[] = {"tp", "pp", "dp", "pp_ends"};
constexpr int kKinds = static_cast<int>(CommKind::kCount);

// What one step produced, summed over the job.
struct StepResult {
  double loss = 0, lr = 0, grad_norm = 0, seconds = 0;
  int64_t flops = 0;           // model FLOPs (MFU)
  int64_t hardware_flops = 0;  // with recomputation (HFU)
  // The largest rank's peaks so far, as PyTorch names them: bytes of live tensors (allocated), bytes
  // its allocator held (reserved: the tensors and its cache of freed blocks), and its resident
  // memory (the whole process: those, code, libraries, MPI).
  double memory_peak_allocated_bytes = 0, memory_peak_reserved_bytes = 0, rss_peak_bytes = 0;
  bool skipped = false, stop = false;
  std::vector<int64_t> bytes;  // per logged group and kind
};

// One rank's share of a training job, set up in the order Train() calls the steps below.
class Trainer {
 public:
  Trainer(const RunConfig& config, MpiCommunicator& world)
      : config_(config), m_(config.model()), t_(config.train()), par_(config.parallel()), world_(world),
        lead_(world.rank() == 0), device_(TrainingDevice(config.train().device())) {}

  // Everything is checked before any work, identically on every rank, and the ranks agree on the
  // outcome, so a bad config, layout, data file or directory stops every rank with one message.
  absl::Status CheckBeforeStart();
  // The mesh, samplers, this rank's part of the model, its gradient groups and the optimizer.
  absl::Status BuildModel();
  // Progress at step 0, or the checkpoint's; the metrics file opened to continue from there.
  absl::Status ResumeOrStart();
  absl::Status Announce();
  absl::StatusOr<TrainSummary> Run();

 private:
  absl::StatusOr<StepResult> Step(int64_t step);
  JsonRecord Record(int64_t step, const StepResult& r, bool eval) const;
  absl::Status Finish();

  const RunConfig& config_;
  const ModelConfig& m_;
  const TrainConfig& t_;
  const ParallelConfig& par_;
  MpiCommunicator& world_;
  const bool lead_;  // world rank 0 prints and writes files
  const Device device_;  // where this rank's model, optimizer state and activations live
  data::TokenBuffer train_tokens_, val_tokens_;
  uint32_t tokenizer_fingerprint_ = 0;
  double peak_flops_ = 0;
  std::vector<DirectoryLock> locks_;  // rank 0's, for the job's life
  std::unique_ptr<ProcessMesh> mesh_;
  std::optional<data::TrainSampler> sampler_;
  std::optional<data::EvalSampler> val_;
  std::unique_ptr<Decoder> model_;
  std::vector<Tensor*> values_, grads_, tp_partial_grads_, tied_grads_;
  std::optional<Zero1Partition> zero1_;
  std::optional<AdamW> optimizer_;
  std::unique_ptr<DecoderStage> stage_;
  std::unique_ptr<MetricsWriter> metrics_;
  Progress progress_;
  TrainSummary summary_;
  int64_t first_row_ = 0, rows_ = 0;  // this DP rank's slice of every global batch
  int accumulation_ = 0;
  int64_t tokens_per_step_ = 0, flops_cumulative_ = 0, sampled_step_ = 0;
  int skipped_steps_ = 0;
};

absl::Status Trainer::CheckBeforeStart() {
  peak_flops_ = t_.peak_flops();
  absl::Status checks = [&]() -> absl::Status {
    if (peak_flops_ <= 0 && !t_.peak_device().empty()) {
      LRKV_TRY_ASSIGN(const double device, LookupDevicePeak(t_.peak_device()));
      peak_flops_ = device * world_.size();
    }
    LRKV_TRY(ValidateLayout({par_.dp(), par_.pp(), par_.tp()}, world_.size()));
    LRKV_TRY(ValidateModelConfig(m_));
    LRKV_TRY(ValidateTrainConfig(t_));
    LRKV_TRY(ValidateParallelConfig(config_));
    LRKV_TRY_ASSIGN(train_tokens_, LoadTokenShard(t_.data_dir() + "/train.bin", m_.vocab_size(), &tokenizer_fingerprint_));
    LRKV_TRY_ASSIGN(val_tokens_, LoadTokenShard(t_.data_dir() + "/val.bin", m_.vocab_size(), &tokenizer_fingerprint_));
    if (!lead_) return absl::OkStatus();
    // One job per directory: a second job writing the same files would interleave them.
    LRKV_TRY_ASSIGN(DirectoryLock out_lock, DirectoryLock::Acquire(t_.out_dir(), "run directory", "--out_dir"));
    locks_.push_back(std::move(out_lock));
    if (t_.checkpoint_dir().empty()) return absl::OkStatus();
    std::error_code ec;
    if (!std::filesystem::equivalent(t_.checkpoint_dir(), t_.out_dir(), ec)) {
      LRKV_TRY_ASSIGN(DirectoryLock ck_lock,
                      DirectoryLock::Acquire(t_.checkpoint_dir(), "checkpoint directory", "--checkpoint_dir"));
      locks_.push_back(std::move(ck_lock));
    }
    return CheckCheckpointDirectory(t_);
  }();
  LRKV_TRY(AgreeOnStatus(world_, checks));
  LRKV_TRY(AgreeOnStatus(world_, PrepareTrainingDevice(device_, world_.comm())));
  const int stage = Layout{par_.dp(), par_.pp(), par_.tp()}.StageOf(world_.rank());
  LRKV_TRY(AgreeOnStatus(world_, CheckMemoryFits(config_, stage, world_.comm())));
  return lead_ ? RemoveOldCheckpoints(t_) : absl::OkStatus();
}

absl::Status Trainer::BuildModel() {
  LRKV_TRY_ASSIGN(mesh_, ProcessMesh::Create(world_, {par_.dp(), par_.pp(), par_.tp()}, device_,
                                                     par_.collective_timeout_s()));
  LRKV_TRY_ASSIGN(sampler_, data::TrainSampler::Create(train_tokens_, m_.seq_len(), t_.seed()));
  LRKV_TRY_ASSIGN(val_, data::EvalSampler::Create(val_tokens_, m_.seq_len()));
  // This rank's part of the model: its pipeline stage's layers, its tensor-parallel blocks.
  ModelPlacement placement;
  placement.tp_rank = {mesh_->tp_index(), par_.tp()};
  placement.tp = par_.tp() > 1 ? &mesh_->tp() : nullptr;
  SplitRange(m_.n_layers(), par_.pp(), mesh_->pp_index(), &placement.first_layer, &placement.end_layer);
  placement.first_stage = mesh_->first_stage();
  placement.last_stage = mesh_->last_stage();
  LRKV_TRY_ASSIGN(model_, Decoder::Create(m_, placement, ComputeDType(t_.precision()), device_));
  ParameterSet& params = model_->params();
  model_->set_recompute(t_.recompute());

  // Gradient groups: replicated parameters with partial gradients are summed over TP; tied
  // embeddings held by both pipeline ends are summed over those two ranks.
  const bool tied_copy = m_.tie_embeddings() && par_.pp() > 1;
  for (const auto& p : params.all()) {
    values_.push_back(&p->value), grads_.push_back(&p->grad);
    if (p->spec.tp == TpSplit::kReplicatedPartialGrad && par_.tp() > 1) tp_partial_grads_.push_back(&p->grad);
    if (tied_copy && p->spec.name == "embed.weight") tied_grads_.push_back(&p->grad);
  }
  std::vector<ParamPiece> pieces = WholeParameters(params);
  if (par_.zero1()) {
    LRKV_TRY_ASSIGN(zero1_, Zero1Partition::Create(grads_, mesh_->dp().size(), mesh_->dp().rank()));
    pieces.clear();
    std::vector<ParameterSet::MasterRange> held(params.all().size(), {0, 0});
    for (const auto& piece : zero1_->pieces()) {
      pieces.push_back({params.all()[piece.index].get(), piece.begin, piece.end});
      held[piece.index] = {piece.begin, piece.end};
    }
    // Under mixed precision a rank keeps fp32 masters for its shard only (4 bytes per element of
    // it, not of the model); in FP32 the masters are the values, whole on every rank.
    if (params.mixed_precision()) LRKV_TRY(params.ShardMasters(held));
  }
  // Every block is initialised from the same seed by global element index, so the model is the
  // one a single process would build.
  LRKV_TRY(params.Initialize(t_.seed()));
  // Each gradient element counts once in the global norm: on its primary copy, and without ZeRO-1
  // (every DP rank holds the full averaged gradient) on DP rank 0.
  for (ParamPiece& piece : pieces) {
    piece.in_grad_norm = model_->IsPrimaryCopy(*piece.param) && (par_.zero1() || mesh_->dp_index() == 0);
  }
  LRKV_TRY_ASSIGN(optimizer_, AdamW::Create(pieces, t_));
  if (t_.print_layout()) LRKV_TRY(PrintLayout(params, *mesh_));

  data::RankSlice(t_.global_batch(), mesh_->dp_index(), par_.dp(), &first_row_, &rows_);
  const int64_t mb = t_.micro_batch(), seq = m_.seq_len();
  accumulation_ = static_cast<int>(rows_ / mb);
  tokens_per_step_ = int64_t(t_.global_batch()) * seq;
  // Each token's loss weighs 1 / (tokens on this DP rank); the DP average then makes the gradient
  // that of the mean loss over the global batch.
  stage_ = std::make_unique<DecoderStage>(
      *model_, [mb](int) { return mb; },
      [this, mb](int micro, int32_t* tokens, int32_t* targets) {
        sampler_->SampleBatch(sampled_step_, t_.global_batch(), first_row_ + micro * mb, mb, tokens, targets);
      },
      1.0 / (double(rows_) * seq), /*backward=*/true);
  return absl::OkStatus();
}

absl::Status Trainer::ResumeOrStart() {
  if (t_.resume()) {
    const Clock::time_point load_start = Clock::now();
    LRKV_TRY_ASSIGN(progress_, Resume(config_, tokenizer_fingerprint_, *model_, *optimizer_, *mesh_));
    // Sharded masters refreshed only the values of this rank's shard: the rest from the others.
    if (model_->params().masters_sharded()) LRKV_TRY(zero1_->AllGatherParameters(mesh_->dp(), values_));
    std::vector<double> loaded = {double(progress_.loaded_bytes)};
    LRKV_TRY(SumOverGroup(world_, loaded));
    const double seconds = Seconds(load_start);
    if (lead_ && progress_.checkpoint.empty()) {
      std::printf("  no checkpoint in %s yet: starting at step 0\n", t_.checkpoint_dir().c_str());
    } else if (lead_) {
      if (!progress_.note.empty()) std::printf("  warning: %s\n", progress_.note.c_str());
      std::printf("  resumed from %s: step %lld, %lld tokens; read %.1f MB in %.2f s (%.0f MB/s, all ranks)\n",
                  progress_.checkpoint.c_str(), static_cast<long long>(progress_.step),
                  static_cast<long long>(progress_.tokens), loaded[0] / 1e6, seconds, loaded[0] / 1e6 / seconds);
    }
  }
  summary_.steps = progress_.step, summary_.tokens = progress_.tokens, summary_.final_loss = progress_.last_loss;
  flops_cumulative_ = progress_.flops_cumulative;
  // Initialisation's and the checkpoint's staging buffers are of sizes no step asks for: give them
  // back rather than hold them in the cache for the whole run.
  for (Device d : {Device::kCpu, model_->params().device()}) {
    LRKV_TRY_ASSIGN(Allocator * allocator, AllocatorFor(d));
    LRKV_TRY(allocator->ReleaseCached());
  }
  if (!lead_) return absl::OkStatus();
  std::error_code ec;
  std::filesystem::create_directories(t_.out_dir(), ec);
  const bool metrics_existed = t_.resume() && std::filesystem::exists(t_.metrics_out(), ec);
  // Resuming keeps the records of the steps the checkpoint covers and drops any later ones.
  LRKV_TRY_ASSIGN(MetricsWriter writer, MetricsWriter::Open(t_.metrics_out(), t_.resume() ? progress_.step : -1));
  metrics_ = std::make_unique<MetricsWriter>(std::move(writer));
  // A run killed after committing checkpoint K and before writing K's record gets the record back.
  if (metrics_existed && metrics_->last_step() < progress_.step && !progress_.metrics_record.empty()) {
    LRKV_TRY(metrics_->WriteLine(progress_.metrics_record));
    std::printf("  metrics: step %lld's record restored from the checkpoint\n", static_cast<long long>(progress_.step));
  }
  return absl::OkStatus();
}

absl::Status Trainer::Announce() {
  if (lead_) {
    const ModelCost cost = AnalyzeModel(m_);
    std::printf("lrkv train: %s, %d layers, d_model %d, %d heads, %.2fM parameters, KV cache %lld values/token/layer\n",
                AttentionKindName(m_.attention()), m_.n_layers(), m_.d_model(), m_.n_heads(), cost.params_total / 1e6,
                static_cast<long long>(cost.kv_cache_values_per_token_per_layer));
    std::printf("  layout %s%s on %d ranks (%s schedule); %lld steps x %lld tokens (%d seqs x %d; %d micro-batches of "
                "%d per pipeline)\n",
                mesh_->layout().ToString().c_str(), par_.zero1() ? " + ZeRO-1" : "", world_.size(),
                par_.schedule() == GPIPE ? "GPipe" : "1F1B", static_cast<long long>(t_.steps()),
                static_cast<long long>(tokens_per_step_), t_.global_batch(), m_.seq_len(), accumulation_,
                t_.micro_batch());
    std::printf("  device %s%s, precision %s\n", DeviceName(device_), device_ == Device::kCuda ? " (one GPU per rank)" : "",
                Precision_Name(t_.precision()).c_str());
    std::printf("  data %s: %zu train / %zu val tokens; metrics -> %s\n", t_.data_dir().c_str(), train_tokens_->size(),
                val_tokens_->size(), t_.metrics_out().c_str());
    std::fflush(stdout);
  }
  std::string source = t_.peak_flops() > 0 ? "train.peak_flops"
                                           : absl::StrCat(world_.size(), " x train.peak_device ", t_.peak_device());
  if (peak_flops_ <= 0) {
    const DType dtype = ComputeDType(t_.precision());
    LRKV_TRY_ASSIGN(peak_flops_, MeasureJobPeakFlops(world_, 0.5, device_, dtype));
    source = absl::StrCat(DTypeName(dtype), " GEMM peak measured on every rank's ", DeviceName(device_));
  }
  if (lead_) std::printf("  MFU against %.1f GFLOP/s (%s)\n", peak_flops_ / 1e9, source.c_str());
  return absl::OkStatus();
}

// Forward and backward over the micro-batches, the gradient reductions, the update; the job's
// totals for the step.
absl::StatusOr<StepResult> Trainer::Step(int64_t step) {
  const Clock::time_point start = Clock::now();
  const std::vector<Communicator*> groups = {&mesh_->tp(), &mesh_->pp(), &mesh_->dp(), mesh_->pp_ends()};
  FlopCounter flops;  // this step's work on this rank; evaluation and peak measurements are not in it
  const CountFlopsInto counting(&flops);
  for (Communicator* g : groups) {
    if (g) g->stats().Reset();
  }
  LRKV_TRY(model_->params().ZeroGrads());
  sampled_step_ = step;
  const PipelineSchedule schedule = par_.schedule() == GPIPE ? PipelineSchedule::kGPipe : PipelineSchedule::k1F1B;
  LRKV_TRY(RunPipeline(schedule, mesh_->pp(), *stage_, accumulation_));
  if (world_.rank() == 0 && NanGradientStepForTests(step + 1)) LRKV_TRY(PoisonFirstGradient(model_->params()));
  // Gradients: partial sums completed over TP and the pipeline ends, then the mean over the
  // global batch on every DP rank (or on its ZeRO-1 shard).
  Communicator& dp = mesh_->dp();
  LRKV_TRY(AllReduceInBuckets(mesh_->tp(), tp_partial_grads_, par_.bucket_bytes(), 1.0));
  if (mesh_->pp_ends()) LRKV_TRY(AllReduceInBuckets(*mesh_->pp_ends(), tied_grads_, par_.bucket_bytes(), 1.0));
  if (zero1_) {
    LRKV_TRY(zero1_->ReduceScatterGradients(dp, grads_));
  } else {
    LRKV_TRY(AllReduceInBuckets(dp, grads_, par_.bucket_bytes(), 1.0 / dp.size()));
  }
  std::vector<double> norm_sq = {0.0};
  LRKV_TRY_ASSIGN(norm_sq[0], optimizer_->GradSumSquares());
  LRKV_TRY(SumOverGroup(world_, norm_sq));
  StepResult r;
  r.grad_norm = std::sqrt(norm_sq[0]);
  r.lr = LearningRate(t_, step);
  // A non-finite gradient (a non-finite loss makes every gradient so) is never applied.
  r.skipped = !std::isfinite(r.grad_norm);
  if (r.skipped) {
    LRKV_TRY(RefuseNonFiniteStep(*optimizer_, world_, t_, step + 1, r.grad_norm, ++skipped_steps_));
  } else {
    LRKV_TRY(optimizer_->Step(r.lr, ClipScale(r.grad_norm, t_.grad_clip())));
    LRKV_TRY(model_->params().RefreshValues());
    // Under ZeRO-1 each rank updated its shard only; every rank's goes to all. In FP32 the values
    // are the masters; under mixed precision each rank cast its master shard to bf16 above, and
    // the bf16 values are gathered (half the bytes of the fp32 masters).
    if (zero1_) LRKV_TRY(zero1_->AllGatherParameters(dp, values_));
  }
  LRKV_TRY(WaitForDevice(model_->params().device()));  // the step's time includes the enqueued update
  // Job totals: loss sum, FLOPs, the bytes per (group, kind), and any rank's stop signal (so one
  // rank's signal stops every rank at this step).
  const double loss_sum = stage_->TakeLossSum();
  std::vector<double> totals = {ReportsLoss(*mesh_) ? loss_sum : 0.0, double(flops.ModelTotal()),
                                double(StopSignal()), double(flops.Total())};
  for (Communicator* g : groups) {
    for (int k = 0; k < kKinds; ++k) totals.push_back(g ? double(g->stats().bytes[k]) : 0.0);
  }
  LRKV_TRY(SumOverGroup(world_, totals));
  r.loss = totals[0] / tokens_per_step_;
  r.flops = static_cast<int64_t>(totals[1]);
  r.stop = totals[2] > 0;
  r.hardware_flops = static_cast<int64_t>(totals[3]);
  for (size_t i = 4; i < totals.size(); ++i) r.bytes.push_back(static_cast<int64_t>(totals[i]));
  LRKV_TRY_ASSIGN(Allocator * allocator, AllocatorFor(model_->params().device()));
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const AllocatorStats held = allocator->Stats();
  std::vector<double> peaks = {double(held.peak_in_use), double(held.peak_held), 1024.0 * usage.ru_maxrss};  // KiB
  LRKV_TRY(MaxOverGroup(world_, peaks));
  r.memory_peak_allocated_bytes = peaks[0], r.memory_peak_reserved_bytes = peaks[1], r.rss_peak_bytes = peaks[2];
  r.seconds = Seconds(start);
  return r;
}

// The step's metrics record, complete but for the checkpoint's own figures.
JsonRecord Trainer::Record(int64_t step, const StepResult& r, bool eval) const {
  JsonRecord record;
  record.Add("step", step + 1).Add("loss", r.loss).Add("lr", r.lr).Add("grad_norm", r.grad_norm);
  record.Add("tokens", summary_.tokens).Add("tokens_per_s", tokens_per_step_ / r.seconds);
  record.Add("step_time_s", r.seconds).Add("flops_step", r.flops).Add("flops_cumulative", flops_cumulative_);
  record.Add("flops_per_s", r.flops / r.seconds).Add("mfu", r.flops / r.seconds / peak_flops_);
  record.Add("hardware_flops_step", r.hardware_flops).Add("hfu", r.hardware_flops / r.seconds / peak_flops_);
  record.Add("memory_peak_allocated_bytes", int64_t(r.memory_peak_allocated_bytes));
  record.Add("memory_peak_reserved_bytes", int64_t(r.memory_peak_reserved_bytes));
  record.Add("rss_peak_bytes", int64_t(r.rss_peak_bytes));
  for (size_t i = 0; i < r.bytes.size(); ++i) {
    if (r.bytes[i] > 0) {
      record.Add(absl::StrCat("comm_bytes_", kLoggedGroupNames[i / kKinds], "_", CommKindName(CommKind(i % kKinds))),
                 r.bytes[i]);
    }
  }
  if (r.skipped) record.Add("skipped", int64_t(1));
  if (eval) record.Add("val_loss", summary_.final_val_loss);
  return record;
}

absl::StatusOr<TrainSummary> Trainer::Run() {
  const Clock::time_point start = Clock::now();
  for (int64_t step = progress_.step; step < t_.steps(); ++step) {
    LRKV_TRY_ASSIGN(const StepResult r, Step(step));
    flops_cumulative_ += r.flops;
    summary_.steps = step + 1;
    summary_.tokens += tokens_per_step_;
    summary_.final_loss = r.loss;
    const bool last = step + 1 == t_.steps() || r.stop;
    const bool eval = last || (t_.eval_every() > 0 && (step + 1) % t_.eval_every() == 0);
    if (eval) {
      LRKV_TRY_ASSIGN(summary_.final_val_loss, Evaluate(*model_, *val_, t_, *mesh_));
    }
    JsonRecord record = Record(step, r, eval);
    // Checkpoint: every save_every steps and at the end; the step waits for it (the stall). It
    // keeps the step's record, so the metrics file can always be brought up to its step.
    double save_seconds = -1;
    std::vector<double> saved_bytes = {0.0};
    if (!t_.checkpoint_dir().empty() && (last || (t_.save_every() > 0 && (step + 1) % t_.save_every() == 0))) {
      const Clock::time_point save_start = Clock::now();
      Progress now;
      now.step = step + 1, now.tokens = summary_.tokens, now.flops_cumulative = flops_cumulative_;
      now.last_loss = r.loss, now.metrics_record = record.ToString(), now.tokenizer_fingerprint = tokenizer_fingerprint_;
      LRKV_TRY_ASSIGN(const int64_t written, SaveTrainingCheckpoint(config_, now, *model_, *optimizer_, *mesh_));
      save_seconds = Seconds(save_start);
      saved_bytes = {double(written)};
      LRKV_TRY(SumOverGroup(world_, saved_bytes));
    }
    if (lead_) {
      std::string tail;
      if (save_seconds >= 0) {
        record.Add("checkpoint_seconds", save_seconds).Add("checkpoint_bytes", int64_t(saved_bytes[0]));
        tail = absl::StrFormat(" | saved %s (%.2fs)", CheckpointName(step + 1), save_seconds);
      }
      if (eval) tail += absl::StrFormat(" | val_loss %.4f", summary_.final_val_loss);
      LRKV_TRY(metrics_->Write(record));
      if (eval || save_seconds >= 0 || (step + 1) % t_.log_every() == 0 || step == progress_.step) {
        const double eta = Seconds(start) / double(step + 1 - progress_.step) * double(t_.steps() - step - 1);
        std::printf("step %5lld/%lld | loss %.4f | lr %.2e | grad_norm %.3f | %6.0f tok/s | MFU %4.1f%% | ETA %s%s\n",
                    static_cast<long long>(step + 1), static_cast<long long>(t_.steps()), r.loss, r.lr, r.grad_norm,
                    tokens_per_step_ / r.seconds, 100.0 * r.flops / r.seconds / peak_flops_, Duration(eta).c_str(),
                    tail.c_str());
        std::fflush(stdout);
      }
    }
    if (r.stop) break;
  }
  summary_.seconds = Seconds(start);
  LRKV_TRY(Finish());
  return summary_;
}

// The stop message, the parameter dump, summary.json.
absl::Status Trainer::Finish() {
  if (summary_.steps < t_.steps()) {
    ClearStopSignal();
    if (lead_) {
      std::printf("stopped by SIGTERM/SIGINT/SIGUSR1 after step %lld of %lld%s\n",
                  static_cast<long long>(summary_.steps), static_cast<long long>(t_.steps()),
                  t_.checkpoint_dir().empty() ? " (no --checkpoint_dir: nothing saved)"
                                              : absl::StrCat("; resume with --resume from ", t_.checkpoint_dir()).c_str());
    }
  }
  if (!t_.save_params_dir().empty()) LRKV_TRY(SaveGlobalParameters(t_.save_params_dir(), *model_, *mesh_, zero1_ ? &*zero1_ : nullptr));
  if (!lead_) return absl::OkStatus();
  JsonRecord s;
  s.Add("attention", std::string(AttentionKindName(m_.attention()))).Add("params", AnalyzeModel(m_).params_total);
  s.Add("layout", mesh_->layout().ToString()).Add("steps", summary_.steps).Add("tokens", summary_.tokens);
  s.Add("final_loss", summary_.final_loss).Add("final_val_loss", summary_.final_val_loss);
  s.Add("seconds", summary_.seconds).Add("flops_cumulative", flops_cumulative_);
  // The machine, since its speed is what seconds measure: lead rank's CPU, the instruction sets the
  // build targets and the CPU GEMM libraries.
  s.Add("cpu", CpuDescription()).Add("cpu_build_features", absl::StrJoin(BuildCpuFeatures(), " "));
  s.Add("cpu_gemm", CpuGemmLibraries());
  LRKV_TRY(WriteJsonFile(t_.out_dir() + "/summary.json", s));
  std::printf("done: %lld steps, %lld tokens in %s | final loss %.4f | val_loss %.4f | summary -> %s/summary.json\n",
              static_cast<long long>(summary_.steps), static_cast<long long>(summary_.tokens),
              Duration(summary_.seconds).c_str(), summary_.final_loss, summary_.final_val_loss, t_.out_dir().c_str());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainSummary> Train(const RunConfig& config, MpiCommunicator& world) {
  // A stop signal during start-up is kept and honoured at the end of the first step.
  InstallStopSignalHandlers();
  Trainer trainer(config, world);
  LRKV_TRY(trainer.CheckBeforeStart());
  LRKV_TRY(trainer.BuildModel());
  LRKV_TRY(trainer.ResumeOrStart());
  LRKV_TRY(trainer.Announce());
  return trainer.Run();
}

}  // namespace lrkv
