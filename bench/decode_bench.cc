// decode_bench: time per generated token with the KV cache, per attention variant, against the
// memory bound. A generated token reads every weight once and every cached byte of its sequence
// once; this machine's read bandwidth turns those bytes into about the fastest such a step could
// be. The machine shares its memory with others and its bandwidth moves by 2x within minutes, so
// each case measures its own: one pass over 1 GiB right before each of its timed tokens, the best
// pass against the best token (paired: the two see the same neighbours). A variant that rebuilds
// its keys from a latent (LRKV; MLA and MLRA under QK-norm) does FLOPs in proportion to its context
// too, so the step's FLOPs (the ops' own counts) over this machine's SGEMM rate, the highest of a
// measurement before and after each config, give a compute bound beside it; the roofline is the
// larger of the two. Each case's time is the fastest of --steps tokens. Writes --out (JSON) and a
// Markdown table on stdout, once every case has run; progress on stderr.
//   decode_bench [--configs=configs/paper/1.2b-{mha,...}.textproto ...] [--layers=2]
//                [--contexts=512,2048,8192,16384] [--batches=1,16] [--max_cached_gib=8] [--steps=5]
//                [--set=model.FIELD=VALUE,...] [--pack_weights=true] [--out=bench/results/decode_cpu.json]
// The cache is filled directly (its values do not change the time), so no prefill is timed.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "bench/bench_main.h"
#include "launch/train/peak_flops.h"
#include "model/attention/variant_registry.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/flop_model.h"
#include "nlohmann/json.hpp"
#include "runtime/flop_counter.h"
#include "runtime/status.h"

ABSL_FLAG(std::string, configs, "", "comma-separated model configs (default: configs/paper/1.2b-VARIANT for every variant)");
ABSL_FLAG(std::string, source_dir, ".", "the repository, for the default configs");
ABSL_FLAG(int, layers, 2, "layers of each config kept (the widths are the config's)");
ABSL_FLAG(std::string, contexts, "512,2048,8192,16384", "cached positions per sequence");
ABSL_FLAG(std::string, batches, "1,16", "sequences decoded together");
ABSL_FLAG(double, max_cached_gib, 8.0, "skip a (batch, context) whose cache would exceed this");
ABSL_FLAG(int, steps, 5, "timed tokens per case (after one warm-up token); the fastest is reported");
ABSL_FLAG(std::string, out, "bench/results/decode_cpu.json", "JSON report");
ABSL_FLAG(bool, pack_weights, true,
          "decode with the linear weights packed for few-row products (model/parameter.h set_pack_weights)");
ABSL_FLAG(std::string, set, "", "config overrides applied to every config, e.g. model.qk_norm=false");

namespace lrkv {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Read bandwidth: one pass of BLAS's matrix-vector product over a 1 GiB matrix, the way a decoding
// step streams its weights (multithreaded, vectorised, many rows in flight). A scalar OpenMP sum is
// bound by its adds' latency and read only 18.5 GB/s here, BLAS's sasum 17.0, while decoding steps
// streamed their weights faster than either. Every pass's reading is kept for the report.
class ReadBandwidth {
 public:
  ReadBandwidth() : a_(kRows * kCols, 1.0f), x_(kCols, 1.0f), y_(kRows) {}
  // Bytes per second of one pass.
  double Pass() {
    const auto t0 = Clock::now();
    cblas_sgemv(CblasRowMajor, CblasNoTrans, int(kRows), int(kCols), 1.0f, a_.data(), int(kCols), x_.data(), 1,
                0.0f, y_.data(), 1);
    const double bytes_per_s = kRows * kCols * sizeof(float) / Since(t0);
    if (y_[kRows - 1] != float(kCols)) std::fprintf(stderr, "bandwidth check failed\n");
    readings_.push_back(bytes_per_s);
    return bytes_per_s;
  }
  const std::vector<double>& readings() const { return readings_; }

 private:
  static constexpr int64_t kCols = 4096, kRows = (int64_t(1) << 30) / sizeof(float) / kCols;
  std::vector<float> a_, x_, y_;
  std::vector<double> readings_;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::vector<int64_t> Numbers(const std::string& csv) {
  std::vector<int64_t> v;
  for (absl::string_view s : absl::StrSplit(csv, ',', absl::SkipEmpty())) v.push_back(std::stoll(std::string(s)));
  return v;
}

absl::Status Run() {
  LRKV_REQUIRE(absl::GetFlag(FLAGS_steps) >= 1, "--steps must be at least 1, got ", absl::GetFlag(FLAGS_steps));
  std::vector<std::string> configs = absl::StrSplit(absl::GetFlag(FLAGS_configs), ',', absl::SkipEmpty());
  if (configs.empty()) {
    for (const AttentionVariantInfo& v : AttentionVariants()) {  // every registered variant
      configs.push_back(absl::GetFlag(FLAGS_source_dir) + "/configs/paper/1.2b-" + v.name + ".textproto");
    }
  }
  // The SGEMM rate varies with the neighbours' load too: it is measured again after every config
  // (a second each), and the compute bounds use the highest.
  ReadBandwidth bandwidth;
  LRKV_TRY_ASSIGN(double peak, MeasureGemmFlops(1.0));
  std::fprintf(stderr, "read bandwidth %.1f GB/s, SGEMM %.1f GFLOP/s (%d threads)\n", bandwidth.Pass() / 1e9,
               peak / 1e9, omp_get_max_threads());
  nlohmann::ordered_json report;
  report["threads"] = omp_get_max_threads();
  report["cpu"] = CpuDescription();
  report["simd_bytes"] = cpu::kSimdBytes;
  report["layers"] = absl::GetFlag(FLAGS_layers);
  report["steps_timed"] = absl::GetFlag(FLAGS_steps);
  report["packed_weights"] = absl::GetFlag(FLAGS_pack_weights);
  nlohmann::ordered_json cases = nlohmann::json::array();
  for (const std::string& path : configs) {
    LRKV_TRY_ASSIGN(RunConfig config, LoadRunConfig(path));
    config.mutable_model()->set_n_layers(absl::GetFlag(FLAGS_layers));
    for (absl::string_view o : absl::StrSplit(absl::GetFlag(FLAGS_set), ',', absl::SkipEmpty())) {
      const size_t eq = o.find('=');
      LRKV_REQUIRE(eq != absl::string_view::npos, "--set wants FIELD=VALUE, got '", o, "'");
      LRKV_TRY(ApplyOverride(config, std::string(o.substr(0, eq)), std::string(o.substr(eq + 1))));
    }
    FillDefaults(config);
    LRKV_TRY(ValidateModelConfig(config.model()));
    const ModelConfig& m = config.model();
    ModelPlacement placement;  // built for decoding, as `lrkv generate` builds it
    placement.tp_rank.decoding = true;
    LRKV_TRY_ASSIGN(auto model, Decoder::Create(m, placement));
    model->params().set_pack_weights(absl::GetFlag(FLAGS_pack_weights));
    LRKV_TRY(model->params().Initialize(1));
    // Every weight is read once per step, except an untied embedding table: only the batch's rows.
    const int64_t table = m.tie_embeddings() ? 0 : model->params().Find("embed.weight")->value.numel();
    const int64_t weight_bytes = (model->params().NumElements() - table) * 4;
    // What one rank would cache per token (fp32, these layers) under tensor parallelism: the layout's
    // per-rank KV figure (AnalyzeLayout, as `lrkv flops --layout`), for each tp the config allows.
    nlohmann::ordered_json per_rank;
    per_rank["config"] = path, per_rank["variant"] = std::string(AttentionKindName(m.attention()));
    for (int tp : {1, 2, 4}) {
      RunConfig laid = config;
      laid.mutable_parallel()->set_tp(tp);
      if (!ValidateParallelConfig(laid).ok()) continue;
      per_rank["tp" + std::to_string(tp)] =
          m.n_layers() * AnalyzeLayout(m, tp, 1)[0].kv_cache_values_per_token_per_layer * 4;
    }
    report["kv_bytes_per_token_per_tp_rank"].push_back(per_rank);
    const int steps = absl::GetFlag(FLAGS_steps);
    const int64_t per_token = m.n_layers() * AnalyzeModel(m).kv_cache_values_per_token_per_layer * 4;
    for (int64_t batch : Numbers(absl::GetFlag(FLAGS_batches))) {
      for (int64_t context : Numbers(absl::GetFlag(FLAGS_contexts))) {
        if (double(batch) * (context + steps + 1) * per_token > absl::GetFlag(FLAGS_max_cached_gib) * (1 << 30)) continue;
        LRKV_TRY_ASSIGN(KvCache cache, model->NewCache(batch, context + steps + 1));
        for (int64_t& l : cache.lengths) l = context;
        std::vector<int64_t> seqs(batch);
        for (int64_t i = 0; i < batch; ++i) seqs[i] = i;
        LRKV_TRY_ASSIGN(Tensor next, Tensor::Zeros({batch, 1}, DType::kI32));
        std::vector<double> times, bandwidths;
        FlopCounter flops;  // the warm-up step's: every step does the same work, but for one position
        for (int s = 0; s <= steps; ++s) {
          if (s > 0) bandwidths.push_back(bandwidth.Pass());
          const CountFlopsInto counting(s == 0 ? &flops : nullptr);
          const auto t0 = Clock::now();
          LRKV_TRY(model->Extend(cache, seqs, next).status());
          if (s > 0) times.push_back(Since(t0));
        }
        const double step_s = *std::min_element(times.begin(), times.end());  // the fastest: the least disturbed
        const std::string name = std::string(AttentionKindName(m.attention()));
        const double case_bandwidth = *std::max_element(bandwidths.begin(), bandwidths.end());
        std::fprintf(stderr, "  %s batch %lld context %lld: %.1f ms per step (read bandwidth %.1f GB/s)\n",
                     path.c_str(), (long long)batch, (long long)context, step_s * 1e3, case_bandwidth / 1e9);
        nlohmann::ordered_json c;
        c["config"] = path, c["variant"] = name, c["batch"] = batch, c["context"] = context;
        c["step_s"] = step_s, c["token_s"] = step_s / batch;
        // Each sequence's cache is read once; so is every weight, and each sequence's input row.
        c["kv_bytes_read_per_step"] = double(batch) * (context + 1) * per_token;
        c["kv_bytes_per_token_per_rank"] = per_token, c["weight_bytes"] = weight_bytes;
        c["bytes_read_per_step"] = weight_bytes + batch * m.d_model() * 4 + c["kv_bytes_read_per_step"].get<double>();
        c["flops_per_step"] = double(flops.Total());
        c["read_bandwidth_bytes_per_s"] = case_bandwidth;
        cases.push_back(c);
      }
    }
    LRKV_TRY_ASSIGN(const double peak_now, MeasureGemmFlops(1.0));
    std::fprintf(stderr, "  after it: SGEMM %.1f GFLOP/s\n", peak_now / 1e9);
    peak = std::max(peak, peak_now);
  }
  const std::vector<double>& readings = bandwidth.readings();
  const double median = Median(readings), low = *std::min_element(readings.begin(), readings.end());
  const double high = *std::max_element(readings.begin(), readings.end());
  std::fprintf(stderr, "read bandwidth over %zu passes: median %.1f GB/s, %.1f to %.1f; highest SGEMM %.1f GFLOP/s\n",
               readings.size(), median / 1e9, low / 1e9, high / 1e9, peak / 1e9);
  report["read_bandwidth_bytes_per_s"] = {{"median", median}, {"min", low}, {"max", high}, {"passes", readings}};
  report["sgemm_flops_per_s"] = peak;
  std::printf("%s, %d-byte vectors, %d threads; read bandwidth median %.1f GB/s; SGEMM %.1f GFLOP/s; weights %s\n\n",
              report["cpu"].get<std::string>().c_str(), report["simd_bytes"].get<int>(), omp_get_max_threads(),
              median / 1e9, peak / 1e9, absl::GetFlag(FLAGS_pack_weights) ? "packed" : "as stored");
  std::printf("| config | batch | context | ms per step | ms per token | KV MB read per step | read GB/s | "
              "memory bound (ms) | bound / time | GFLOP per step | compute bound (ms) | roofline / time |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (nlohmann::ordered_json& c : cases) {
    const double bandwidth_bps = c["read_bandwidth_bytes_per_s"];
    const double step_s = c["step_s"], bound_s = c["bytes_read_per_step"].get<double>() / bandwidth_bps;
    const double compute_s = c["flops_per_step"].get<double>() / peak, roofline_s = std::max(bound_s, compute_s);
    c["memory_bound_s"] = bound_s, c["bound_over_time"] = bound_s / step_s;
    c["compute_bound_s"] = compute_s, c["roofline_over_time"] = roofline_s / step_s;
    std::printf("| %s | %lld | %lld | %.1f | %.2f | %.1f | %.1f | %.1f | %.3f | %.2f | %.1f | %.3f |\n",
                c["variant"].get<std::string>().c_str(), c["batch"].get<long long>(), c["context"].get<long long>(),
                step_s * 1e3, c["token_s"].get<double>() * 1e3, c["kv_bytes_read_per_step"].get<double>() / 1e6,
                bandwidth_bps / 1e9, bound_s * 1e3, bound_s / step_s, c["flops_per_step"].get<double>() / 1e9,
                compute_s * 1e3, roofline_s / step_s);
  }
  report["cases"] = cases;
  std::printf("\n| variant | KV bytes per token per rank (these layers, fp32): tp1 | tp2 | tp4 |\n"
              "|---|---:|---:|---:|\n");
  for (const nlohmann::ordered_json& bytes : report["kv_bytes_per_token_per_tp_rank"]) {
    std::printf("| %s", bytes["variant"].get<std::string>().c_str());
    for (const char* tp : {"tp1", "tp2", "tp4"}) {
      if (bytes.contains(tp)) {
        std::printf(" | %lld", bytes[tp].get<long long>());
      } else {
        std::printf(" | -");
      }
    }
    std::printf(" |\n");
  }
  return bench::WriteReport(absl::GetFlag(FLAGS_out), report.dump(2));
}

}  // namespace
}  // namespace lrkv

int main(int argc, char** argv) { return lrkv::bench::Main(argc, argv, "decode_bench", lrkv::Run); }
