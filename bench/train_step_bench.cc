// CPU training-step benchmark: GPT-2-small-shaped decoders (d 768, 12 layers, 12 heads, T 64, batch 4,
// vocab 50304, fp32, GELU, RMSNorm, untied) for each attention variant, measured against this
// machine's SGEMM peak (through the runtime's Gemm op) taken in the same process.
//   train_step_bench [--variants=mha,gqa,mqa,mla,lrkv] [--steps=5] [--warmup=2] [--profile] [--out=FILE]
// Writes a JSON report (--out) and prints Markdown tables to stdout; progress goes to stderr.
// --profile adds where the time goes: the slowest GEMM shapes of a step, and the non-GEMM ops timed
// alone at the model's shapes.
#include <cblas.h>
#include <dlfcn.h>
#ifdef LRKV_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "absl/strings/str_split.h"
#include "bench/bench_main.h"
#include "model/attention/variant_registry.h"
#include "model/config.h"
#include "model/decoder.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "runtime/flop_counter.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/attention.h"
#include "parallel/vocab_parallel_cross_entropy.h"
#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/gemm.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/status.h"

ABSL_FLAG(std::string, variants, "", "comma-separated attention variants to run (default: every registered one)");
ABSL_FLAG(int, steps, 5, "timed training steps per variant (the median is reported)");
ABSL_FLAG(int, warmup, 2, "untimed steps per variant before timing (first-touch of activations, BLAS buffers)");
ABSL_FLAG(int, gemm_repeats, 5, "repeats per SGEMM shape when measuring the peak (best is kept)");
ABSL_FLAG(double, target, 0.60, "fraction of the SGEMM peak a variant must reach to meet the target");
ABSL_FLAG(bool, profile, false, "also report the slowest GEMM shapes and the non-GEMM ops timed alone");
ABSL_FLAG(std::string, out, "bench/results/train_step_cpu.json", "JSON report path");

// ---- GEMM timer ----------------------------------------------------------------------------------
// Every float GEMM of the model ends in cblas_sgemm or oneDNN's dnnl_sgemm (runtime/ops/cpu/blas.cc
// picks by shape). The runtime is linked statically into this binary, so these definitions take the
// place of the libraries' own: each times its call by pass and shape, then forwards to the real one.
// The Gemm op's calls are serial (BLAS threads inside), so wall time per call is the GEMM's own;
// bench-only, the runtime is untouched.
namespace lrkv {
namespace {
using GemmKey = std::tuple<int, int64_t, int64_t, int64_t, bool, bool>;  // pass, m, n, k, trans_a, trans_b
struct GemmStat {
  double seconds = 0;
  int64_t calls = 0;
};
std::map<GemmKey, GemmStat> gemm_stats;  // since the last clear()

// The library's own `name`, found past this binary's definition.
template <typename Fn>
Fn Real(const char* name) {
  Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
  if (real == nullptr) {
    std::fprintf(stderr, "train_step_bench: cannot find the library's %s: %s\n", name, dlerror());
    std::abort();
  }
  return real;
}

// Calls inside an OpenMP region (the attention kernels' per-tile GEMMs, on every thread at once) are
// forwarded untimed: their wall times would overlap, and they belong to their op's own time.
template <typename Call>
void Timed(int64_t m, int64_t n, int64_t k, bool ta, bool tb, Call call) {
  if (omp_in_parallel()) {
    call();
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  call();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  GemmStat& st = gemm_stats[{static_cast<int>(CountedPass()), m, n, k, ta, tb}];
  st.seconds += s;
  ++st.calls;
}
}  // namespace
}  // namespace lrkv

extern "C" void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                            const blasint m, const blasint n, const blasint k, const float alpha, const float* a,
                            const blasint lda, const float* b, const blasint ldb, const float beta, float* c,
                            const blasint ldc) {
  static const auto real = lrkv::Real<decltype(&cblas_sgemm)>("cblas_sgemm");
  lrkv::Timed(m, n, k, ta == CblasTrans, tb == CblasTrans,
              [&] { real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); });
}
#ifdef LRKV_HAVE_ONEDNN
extern "C" dnnl_status_t dnnl_sgemm(char ta, char tb, dnnl_dim_t m, dnnl_dim_t n, dnnl_dim_t k, float alpha,
                                    const float* a, dnnl_dim_t lda, const float* b, dnnl_dim_t ldb, float beta,
                                    float* c, dnnl_dim_t ldc) {
  static const auto real = lrkv::Real<decltype(&dnnl_sgemm)>("dnnl_sgemm");
  dnnl_status_t status = dnnl_success;
  lrkv::Timed(m, n, k, ta == 'T', tb == 'T',
              [&] { status = real(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); });
  return status;
}
#endif

namespace lrkv {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr int kBatch = 4, kSeq = 64, kTokens = kBatch * kSeq;

// The shared GPT-2-small shape; each variant appends its attention fields (its registry entry's
// gpt2_small_fields).
constexpr char kBaseModel[] =
    "vocab_size: 50304 d_model: 768 n_layers: 12 n_heads: 12 d_ff: 3072 activation: GELU norm: RMSNORM "
    "qk_norm: false tie_embeddings: false seq_len: 64 ";
struct Variant {
  std::string name;
  std::string attention;  // ModelConfig text
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Deterministic values in [-scale, scale): uninitialised memory could hold NaNs or denormals, which
// would distort the timings.
absl::StatusOr<Tensor> Filled(const Shape& shape, float scale) {
  LRKV_TRY_ASSIGN(Tensor t, Tensor::Empty(shape, DType::kF32));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = scale * (float((i * 2654435761u) % 2048) / 1024.f - 1.f);
  return t;
}

// ---- SGEMM peak -------------------------------------------------------------------------------

struct GemmShape {
  std::string name;
  int64_t m, n, k;
  bool trans_a, trans_b;
};
struct GemmResult {
  GemmShape shape;
  double gflops;
};

// Square shapes give the GEMM libraries their best case; the rest are the decoder's own GEMMs at
// B T = 256 rows (forward and dW forms), so the report shows how close the training shapes get to it.
std::vector<GemmShape> PeakShapes() {
  const int64_t n = kTokens;
  return {
      {"square 1024^3", 1024, 1024, 1024, false, false},
      {"square 2048^3", 2048, 2048, 2048, false, false},
      {"mlp_in fwd (256x768)(768x3072)", n, 3072, 768, false, false},
      {"mlp_out fwd (256x3072)(3072x768)", n, 768, 3072, false, false},
      {"proj fwd (256x768)(768x768)", n, 768, 768, false, false},
      {"mlp_in dW (768x256)(256x3072)", 768, 3072, n, true, false},
      {"lm_head fwd (256x768)(768x50304)", n, 50304, 768, false, true},
      {"lm_head dW (50304x256)(256x768)", 50304, 768, n, true, false},
  };
}

absl::StatusOr<double> GemmGflops(const GemmShape& s, int repeats) {
  LRKV_TRY_ASSIGN(Tensor a, Filled({s.m * s.k}, 0.01f));
  LRKV_TRY_ASSIGN(Tensor b, Filled({s.k * s.n}, 0.01f));
  LRKV_TRY_ASSIGN(Tensor c, Tensor::Zeros({s.m * s.n}, DType::kF32));
  const GemmArgs args = GemmArgs::Dense(s.m, s.n, s.k, s.trans_a, s.trans_b);
  absl::Status status;
  const double best = bench::BestGflops(2.0 * s.m * s.n * s.k, repeats,
                                        [&] { status.Update(Gemm(a, b, c, args, FlopCategory::kMlp)); });
  LRKV_TRY(status);
  return best;
}

// ---- one variant --------------------------------------------------------------------------------

// Seconds per phase of one training step, in execution order.
constexpr const char* kPhaseNames[] = {"zero_grads", "forward", "backward", "clip_grad_norm", "adamw_step"};
constexpr int kPhases = 5;

struct GemmShapeTime {
  GemmKey key;
  GemmStat stat;  // per step
};
struct OpTime {
  std::string op;
  double seconds;  // per training step
};

struct VariantResult {
  std::string name, attention;
  int64_t params = 0, kv_values = 0;
  double init_s = 0, loss = 0;
  double step_s = 0;                 // median
  std::vector<double> step_times;    // every timed step
  double phase_s[kPhases] = {};      // median per phase
  double gemm_s[2] = {};             // median GEMM wall time in forward, backward
  double minor_faults = 0, sys_s = 0;  // median per step (all threads)
  int64_t flops = 0;                 // counted per step
  int64_t flops_by[2][4] = {};       // [pass][category]
  std::vector<GemmShapeTime> gemm_shapes;  // --profile: last timed step, slowest first
  std::vector<OpTime> ops;                 // --profile
};

absl::StatusOr<RunConfig> VariantConfig(const Variant& v) {
  const std::string text = absl::StrCat("model { ", kBaseModel, v.attention,
                                        " } train { lr: 3e-4 weight_decay: 0.1 grad_clip: 1.0 global_batch: ",
                                        kBatch, " seed: 1 }");
  LRKV_TRY_ASSIGN(RunConfig config, ParseRunConfig(text, v.name));
  FillDefaults(config);
  LRKV_TRY(ValidateModelConfig(config.model()));
  return config;
}

// Median seconds of `fn` over a few runs after one warm-up.
template <typename Fn>
absl::StatusOr<double> TimeOp(Fn fn) {
  std::vector<double> t;
  for (int r = 0; r < 6; ++r) {
    const Clock::time_point t0 = Clock::now();
    LRKV_TRY(fn());
    if (r > 0) t.push_back(Since(t0));
  }
  return Median(t);
}

// The main non-GEMM ops of a step, each alone at this model's shapes and multiplied by how often a
// step runs it.
absl::StatusOr<std::vector<OpTime>> ProfileOps(const ModelConfig& m) {
  const int64_t n = kTokens, d = m.d_model(), ff = m.d_ff(), v = m.vocab_size(), layers = m.n_layers();
  const AttentionCost widths = VariantOf(m).cost(m, 1);  // the core's heads: H x branches
  const int64_t h = m.n_heads() * widths.branches, hk = AttentionKvHeads(m) * widths.branches;
  const int64_t dqk = widths.qk_dim, dv = widths.v_dim;
  std::vector<OpTime> ops;

  LRKV_TRY_ASSIGN(Tensor x, Filled({n, ff}, 3.f));
  LRKV_TRY_ASSIGN(Tensor y, Filled({n, ff}, 1.f));
  LRKV_TRY_ASSIGN(Tensor dx, Filled({n, ff}, 1.f));
  LRKV_TRY_ASSIGN(double s, TimeOp([&] { return ActivationForward(Activation::kGelu, x, y); }));
  ops.push_back({"gelu forward (x n_layers)", s * layers});
  LRKV_TRY_ASSIGN(s, TimeOp([&] { return ActivationBackward(Activation::kGelu, y, x, dx); }));
  ops.push_back({"gelu backward (x n_layers)", s * layers});

  LRKV_TRY_ASSIGN(Tensor logits, Filled({n, v}, 4.f));
  LRKV_TRY_ASSIGN(Tensor dlogits, Filled({n, v}, 1.f));
  LRKV_TRY_ASSIGN(Tensor lse, Tensor::Zeros({n}, DType::kF32));
  LRKV_TRY_ASSIGN(Tensor targets, Tensor::Zeros({n}, DType::kI32));
  double loss = 0;
  LRKV_TRY_ASSIGN(s, TimeOp([&]() -> absl::Status {
    LRKV_TRY_ASSIGN(loss, VocabParallelCrossEntropyForward(nullptr, logits, targets, 0, v, lse));
    return absl::OkStatus();
  }));
  ops.push_back({"cross-entropy forward", s});
  LRKV_TRY_ASSIGN(s, TimeOp([&] { return CrossEntropyBackward(logits, targets, 0, lse, 1.0 / n, dlogits); }));
  ops.push_back({"cross-entropy backward", s});

  LRKV_TRY_ASSIGN(Tensor q, Filled({kBatch, kSeq, h, dqk}, 1.f));
  LRKV_TRY_ASSIGN(Tensor k, Filled({kBatch, kSeq, hk, dqk}, 1.f));
  LRKV_TRY_ASSIGN(Tensor val, Filled({kBatch, kSeq, hk, dv}, 1.f));
  LRKV_TRY_ASSIGN(Tensor o, Filled({kBatch, kSeq, h, dv}, 1.f));
  LRKV_TRY_ASSIGN(Tensor attention_lse, Filled({kBatch, h, kSeq}, 1.f));
  LRKV_TRY_ASSIGN(Tensor dq, Filled(q.shape(), 1.f));
  LRKV_TRY_ASSIGN(Tensor dk, Filled(k.shape(), 1.f));
  LRKV_TRY_ASSIGN(Tensor dval, Filled(val.shape(), 1.f));
  const double scale = 1.0 / std::sqrt(double(dqk));
  LRKV_TRY_ASSIGN(s, TimeOp([&] { return CausalAttentionForward(q, k, val, scale, o, attention_lse); }));
  ops.push_back({"attention core forward (x n_layers)", s * layers});
  LRKV_TRY_ASSIGN(s, TimeOp([&] { return CausalAttentionBackward(o, q, k, val, attention_lse, scale, dq, dk, dval); }));
  ops.push_back({"attention core backward (x n_layers)", s * layers});

  LRKV_TRY_ASSIGN(Tensor nx, Filled({n, d}, 1.f));
  LRKV_TRY_ASSIGN(Tensor ny, Filled({n, d}, 1.f));
  LRKV_TRY_ASSIGN(Tensor ndx, Filled({n, d}, 1.f));
  LRKV_TRY_ASSIGN(Tensor w, Filled({d}, 1.f));
  LRKV_TRY_ASSIGN(Tensor dw, Filled({d}, 1.f));
  LRKV_TRY_ASSIGN(Tensor rstd, Filled({n}, 1.f));
  LRKV_TRY_ASSIGN(s, TimeOp([&]() -> absl::Status {
    LRKV_TRY(RmsNormForward(nx, &w, 1e-5, ny, rstd));
    return RmsNormBackward(ny, nx, &w, rstd, ndx, &dw);
  }));
  ops.push_back({"rmsnorm forward + backward (x 2 n_layers + 1)", s * (2 * layers + 1)});
  return ops;
}

absl::StatusOr<VariantResult> RunVariant(const Variant& v, int warmup, int steps, bool profile) {
  LRKV_TRY_ASSIGN(const RunConfig config, VariantConfig(v));
  const ModelConfig& m = config.model();
  VariantResult r;
  r.name = v.name;
  r.attention = v.attention;
  Clock::time_point t0 = Clock::now();
  LRKV_TRY_ASSIGN(std::unique_ptr<Decoder> model, Decoder::Create(m));
  LRKV_TRY(model->params().Initialize(config.train().seed()));
  LRKV_TRY_ASSIGN(AdamW opt, AdamW::Create(WholeParameters(model->params()), config.train()));
  r.init_s = Since(t0);
  r.params = model->params().NumElements();
  r.kv_values = model->KvCacheValuesPerTokenPerLayer();

  // Random tokens and targets: the step's cost does not depend on the text.
  LRKV_TRY_ASSIGN(Tensor tokens, Tensor::Empty({kBatch, kSeq}, DType::kI32));
  LRKV_TRY_ASSIGN(Tensor targets, Tensor::Empty({kBatch, kSeq}, DType::kI32));
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> token(0, m.vocab_size() - 1);
  for (Tensor* t : {&tokens, &targets})
    for (int64_t i = 0; i < t->numel(); ++i) t->data<int32_t>()[i] = token(rng);

  std::vector<double> phase[kPhases], gemm[2], faults, sys;
  for (int s = 0; s < warmup + steps; ++s) {
    // One full optimizer step, timed per phase (all ops are synchronous on CPU).
    double t[kPhases];
    FlopCounter fc;
    const CountFlopsInto counting(&fc);
    gemm_stats.clear();
    rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    t0 = Clock::now();
    LRKV_TRY(model->params().ZeroGrads());
    t[0] = Since(t0), t0 = Clock::now();
    LRKV_TRY_ASSIGN(r.loss, model->Forward(tokens, targets));
    t[1] = Since(t0), t0 = Clock::now();
    LRKV_TRY(model->Backward(1.0));
    t[2] = Since(t0), t0 = Clock::now();
    LRKV_TRY(ClipGradNorm(model->params(), config.train().grad_clip()).status());
    t[3] = Since(t0), t0 = Clock::now();
    LRKV_TRY(opt.Step(config.train().lr()));
    t[4] = Since(t0);
    getrusage(RUSAGE_SELF, &ru1);
    if (!std::isfinite(r.loss)) return absl::InternalError(absl::StrCat(v.name, ": loss is not finite"));
    std::fprintf(stderr, "  %s step %d%s: %.3f s\n", v.name.c_str(), s + 1, s < warmup ? " (warm-up)" : "",
                 t[0] + t[1] + t[2] + t[3] + t[4]);
    if (s < warmup) continue;
    // Identical every step: the work depends only on the shapes.
    r.flops = fc.Total();
    for (int p = 0; p < 2; ++p)
      for (int c = 0; c < 4; ++c) r.flops_by[p][c] = fc.Get(static_cast<Pass>(p), static_cast<FlopCategory>(c));
    r.step_times.push_back(t[0] + t[1] + t[2] + t[3] + t[4]);
    for (int p = 0; p < kPhases; ++p) phase[p].push_back(t[p]);
    double g[2] = {0, 0};
    for (const auto& [key, st] : gemm_stats) g[std::get<0>(key)] += st.seconds;
    gemm[0].push_back(g[0]), gemm[1].push_back(g[1]);
    faults.push_back(double(ru1.ru_minflt - ru0.ru_minflt));
    sys.push_back(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec + 1e-6 * (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec));
  }
  r.step_s = Median(r.step_times);
  for (int p = 0; p < kPhases; ++p) r.phase_s[p] = Median(phase[p]);
  r.gemm_s[0] = Median(gemm[0]), r.gemm_s[1] = Median(gemm[1]);
  r.minor_faults = Median(faults), r.sys_s = Median(sys);
  if (profile) {
    for (const auto& [key, st] : gemm_stats) r.gemm_shapes.push_back({key, st});
    std::sort(r.gemm_shapes.begin(), r.gemm_shapes.end(),
              [](const GemmShapeTime& a, const GemmShapeTime& b) { return a.stat.seconds > b.stat.seconds; });
    model.reset();  // its ~2.6 GB go back to the allocator before the op timings
    LRKV_TRY_ASSIGN(r.ops, ProfileOps(m));
  }
  return r;
}

// ---- machine and report -----------------------------------------------------------------------

// Load when the run starts: anything above ~0.5 means another job shared the cores.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "null" : one;
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double GemmFlops(const GemmKey& key) {
  return 2.0 * std::get<1>(key) * std::get<2>(key) * std::get<3>(key);
}
std::string GemmName(const GemmKey& key) {
  return absl::StrFormat("%s %dx%dx%d%s%s", std::get<0>(key) ? "bwd" : "fwd", std::get<1>(key), std::get<2>(key),
                         std::get<3>(key), std::get<4>(key) ? " A^T" : "", std::get<5>(key) ? " B^T" : "");
}

struct Report {
  double peak = 0;
  std::vector<GemmResult> gemms;
  std::vector<VariantResult> variants;
  double target = 0;
  int steps = 0, warmup = 0;
  std::string load_at_start;
};

std::string Json(const Report& rep) {
  using Json = nlohmann::ordered_json;
  const char* env_threads = std::getenv("OMP_NUM_THREADS");
  Json j;
  j["benchmark"] = "train_step_cpu";
  j["date"] = UtcNow();
  j["machine"] = {{"nproc", sysconf(_SC_NPROCESSORS_ONLN)},
                  {"cpu_model", CpuDescription()},
                  {"simd_bytes", cpu::kSimdBytes},
                  {"loadavg_1m_at_start", std::strtod(rep.load_at_start.c_str(), nullptr)},
                  {"omp_max_threads", omp_get_max_threads()},
                  {"OMP_NUM_THREADS", env_threads ? Json(env_threads) : Json(nullptr)},
                  {"cpu_gemm", CpuGemmLibraries()},
                  {"openblas",
                   {{"config", openblas_get_config()},
                    {"core", openblas_get_corename()},
                    {"threads", openblas_get_num_threads()},
                    {"parallel", openblas_get_parallel() == 2 ? "openmp" : "pthreads or none"}}}};
  // The model exactly as built: the shared ModelConfig text, plus each variant's attention fields.
  j["model_config"] = std::string(absl::StripTrailingAsciiWhitespace(kBaseModel));
  j["batch"] = kBatch, j["seq_len"] = kSeq, j["dtype"] = "f32";
  j["steps"] = rep.steps, j["warmup_steps"] = rep.warmup, j["target_fraction"] = rep.target;
  j["sgemm_peak_gflops"] = rep.peak;
  j["sgemm"] = Json::array();
  for (const GemmResult& g : rep.gemms) {
    j["sgemm"].push_back({{"shape", g.shape.name}, {"m", g.shape.m}, {"n", g.shape.n}, {"k", g.shape.k}, {"gflops", g.gflops}});
  }
  j["variants"] = Json::array();
  for (const VariantResult& v : rep.variants) {
    const double gflops = v.flops / v.step_s / 1e9, frac = gflops / rep.peak;
    Json r;
    r["variant"] = v.name, r["attention_config"] = v.attention, r["params"] = v.params;
    r["kv_cache_values_per_token_per_layer"] = v.kv_values, r["init_s"] = v.init_s, r["loss"] = v.loss;
    r["step_time_s_median"] = v.step_s, r["step_times_s"] = v.step_times;
    r["tokens_per_s"] = kTokens / v.step_s, r["flops_per_step"] = v.flops, r["achieved_gflops"] = gflops;
    r["fraction_of_sgemm_peak"] = frac, r["meets_target"] = frac >= rep.target;
    for (int p = 0; p < kPhases; ++p) r["phase_time_s_median"][kPhaseNames[p]] = v.phase_s[p];
    r["gemm_time_s_median"] = {{"forward", v.gemm_s[0]}, {"backward", v.gemm_s[1]}};
    r["minor_page_faults_per_step"] = v.minor_faults, r["sys_time_s_per_step"] = v.sys_s;
    for (int p = 0; p < 2; ++p) {
      for (int c = 0; c < 4; ++c) {
        r["flops_per_step_by_category"][absl::StrCat(p ? "backward" : "forward", ".",
                                                     FlopCategoryName(static_cast<FlopCategory>(c)))] = v.flops_by[p][c];
      }
    }
    for (const GemmShapeTime& g : v.gemm_shapes) {
      r["gemm_shapes_last_step"].push_back({{"gemm", GemmName(g.key)},
                                            {"calls", g.stat.calls},
                                            {"seconds", g.stat.seconds},
                                            {"gflops", GemmFlops(g.key) * g.stat.calls / g.stat.seconds / 1e9}});
    }
    for (const auto& o : v.ops) r["op_time_s_per_step"][o.op] = o.seconds;
    j["variants"].push_back(std::move(r));
  }
  return j.dump(2);
}

void PrintTables(const Report& rep) {
  std::printf("SGEMM peak (%s, %d threads): **%.1f GFLOP/s**; target %.2f of peak = %.1f GFLOP/s\n\n",
              CpuGemmLibraries().c_str(), omp_get_max_threads(), rep.peak, rep.target, rep.target * rep.peak);
  std::printf("| variant | params (M) | KV values/token/layer | step (ms, median) | tokens/s | GFLOP/step | GFLOP/s | fraction of SGEMM peak | meets target |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
  for (const VariantResult& v : rep.variants) {
    const double gflops = v.flops / v.step_s / 1e9, frac = gflops / rep.peak;
    std::printf("| %s | %.1f | %lld | %.0f | %.0f | %.1f | %.1f | %.2f | %s |\n", v.name.c_str(), v.params / 1e6,
                static_cast<long long>(v.kv_values), v.step_s * 1e3, kTokens / v.step_s, v.flops / 1e9, gflops,
                frac, frac >= rep.target ? "yes" : "no");
  }
  // Where the time goes: GEMMs vs the rest of forward/backward; the optimizer phases count no FLOPs.
  std::printf("\nMedian ms per step (\"other\" = forward/backward time outside GEMMs):\n\n");
  std::printf("| variant | zero_grads | forward GEMM | forward other | backward GEMM | backward other | clip | adamw | GEMM GFLOP/s | page faults/step | sys ms/step |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const VariantResult& v : rep.variants) {
    const double gemm_flops = v.flops - v.flops_by[0][1] - v.flops_by[1][1];  // less the attention core
    std::printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %.0f | %.0f |\n", v.name.c_str(),
                v.phase_s[0] * 1e3, v.gemm_s[0] * 1e3, (v.phase_s[1] - v.gemm_s[0]) * 1e3, v.gemm_s[1] * 1e3,
                (v.phase_s[2] - v.gemm_s[1]) * 1e3, v.phase_s[3] * 1e3, v.phase_s[4] * 1e3,
                gemm_flops / (v.gemm_s[0] + v.gemm_s[1]) / 1e9, v.minor_faults, v.sys_s * 1e3);
  }
  for (const VariantResult& v : rep.variants) {
    if (v.gemm_shapes.empty()) continue;
    std::printf("\n%s, slowest GEMM shapes (m x n x k, one step):\n\n| GEMM | calls | ms | GFLOP/s |\n|---|---:|---:|---:|\n",
                v.name.c_str());
    for (size_t s = 0; s < std::min<size_t>(8, v.gemm_shapes.size()); ++s) {
      const GemmShapeTime& g = v.gemm_shapes[s];
      std::printf("| %s | %lld | %.1f | %.1f |\n", GemmName(g.key).c_str(), static_cast<long long>(g.stat.calls),
                  g.stat.seconds * 1e3, GemmFlops(g.key) * g.stat.calls / g.stat.seconds / 1e9);
    }
    std::printf("\n%s, non-GEMM ops timed alone (ms per step):\n\n| op | ms |\n|---|---:|\n", v.name.c_str());
    for (const OpTime& o : v.ops) std::printf("| %s | %.1f |\n", o.op.c_str(), o.seconds * 1e3);
  }
  std::fflush(stdout);
}

absl::Status Run() {
  Report rep;
  rep.steps = absl::GetFlag(FLAGS_steps);
  rep.warmup = absl::GetFlag(FLAGS_warmup);
  rep.target = absl::GetFlag(FLAGS_target);
  rep.load_at_start = LoadAverage();
  LRKV_REQUIRE(rep.steps > 0 && rep.warmup >= 0, "--steps must be positive and --warmup non-negative");
  std::vector<Variant> selected;
  std::vector<std::string> names = absl::StrSplit(absl::GetFlag(FLAGS_variants), ',', absl::SkipEmpty());
  if (names.empty()) {
    for (const AttentionVariantInfo& v : AttentionVariants()) names.push_back(v.name);
  }
  for (const std::string& name : names) {
    const auto& all = AttentionVariants();
    const auto it = std::find_if(all.begin(), all.end(), [&](const AttentionVariantInfo& v) { return name == v.name; });
    LRKV_REQUIRE(it != all.end(), "--variants: no attention variant '", name, "'");
    selected.push_back({it->name, it->gpt2_small_fields});
  }
  LRKV_REQUIRE(!selected.empty(), "--variants selects nothing");

  std::fprintf(stderr, "SGEMM peak (%s, %d threads):\n", CpuGemmLibraries().c_str(), omp_get_max_threads());
  for (const GemmShape& s : PeakShapes()) {
    LRKV_TRY_ASSIGN(const double g, GemmGflops(s, absl::GetFlag(FLAGS_gemm_repeats)));
    rep.gemms.push_back({s, g});
    rep.peak = std::max(rep.peak, g);
    std::fprintf(stderr, "  %-36s %7.1f GFLOP/s\n", s.name.c_str(), g);
  }
  for (const Variant& v : selected) {
    std::fprintf(stderr, "%s:\n", v.name.c_str());
    LRKV_TRY_ASSIGN(VariantResult r, RunVariant(v, rep.warmup, rep.steps, absl::GetFlag(FLAGS_profile)));
    rep.variants.push_back(std::move(r));
  }

  LRKV_TRY(bench::WriteReport(absl::GetFlag(FLAGS_out), Json(rep)));
  PrintTables(rep);
  return absl::OkStatus();
}

}  // namespace
}  // namespace lrkv

int main(int argc, char** argv) { return lrkv::bench::Main(argc, argv, "train_step_bench", lrkv::Run); }
