// CPU SGEMM per library: OpenBLAS's cblas_sgemm, oneDNN's dnnl_sgemm, and the runtime's Gemm op,
// which picks between them by shape (runtime/ops/cpu/blas.cc). The shapes are the models' own: the
// training benchmark's GPT-2-small GEMMs at 256 rows (forward, dX and dW forms) and the decode
// benchmark's 1.2B-width projections, MLP and LM head at 1 and 16 rows, where a packed copy of B, as
// decoding batches make (runtime/ops/packed_linear.h), is timed too.
//   gemm_bench [--repeats=10] [--out=bench/results/gemm_cpu.json]
// Prints a Markdown table; writes the same figures as JSON. Best of --repeats per shape and library.
#include <cblas.h>
#include <omp.h>

#include <cstdio>
#include <string>
#include <vector>

#ifdef LRKV_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "bench/bench_main.h"
#include "nlohmann/json.hpp"
#include "runtime/ops/gemm.h"
#include "runtime/ops/packed_linear.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

ABSL_FLAG(int, repeats, 10, "timed calls per shape and library (the fastest is kept)");
ABSL_FLAG(std::string, out, "bench/results/gemm_cpu.json", "JSON report path");

namespace lrkv {
namespace {

struct Shape {
  std::string name;
  int64_t m, n, k;
  bool ta, tb;
};

std::vector<Shape> Shapes() {
  std::vector<Shape> s = {
      {"gpt2-small mlp_in fwd", 256, 3072, 768, false, false},
      {"gpt2-small mlp_out dX", 256, 3072, 768, false, true},
      {"gpt2-small mlp_in dW", 768, 3072, 256, true, false},
      {"gpt2-small lm_head fwd", 256, 50304, 768, false, true},
      {"gpt2-small lm_head dW", 50304, 768, 256, true, false},
  };
  for (int64_t rows : {1, 4, 16}) {
    const std::string at = " (" + std::to_string(rows) + " rows)";
    s.push_back({"1.2b qkv/out proj" + at, rows, 1536, 1536, false, false});
    s.push_back({"1.2b mlp_in" + at, rows, 6144, 1536, false, false});
    s.push_back({"1.2b mlp_out" + at, rows, 1536, 6144, false, false});
    s.push_back({"1.2b lm_head" + at, rows, 50304, 1536, false, true});
  }
  return s;
}

absl::Status Run() {
  const int repeats = absl::GetFlag(FLAGS_repeats);
  LRKV_REQUIRE(repeats >= 1, "--repeats must be at least 1, got ", repeats);
  nlohmann::json rows = nlohmann::json::array();
  std::printf("CPU SGEMM, %d threads, %s\n\n", omp_get_max_threads(), CpuGemmLibraries().c_str());
  std::printf("| shape | m | n | k | op | OpenBLAS GFLOP/s | oneDNN GFLOP/s | runtime Gemm GFLOP/s | packed B GFLOP/s |\n");
  std::printf("|---|---:|---:|---:|---|---:|---:|---:|---:|\n");
  for (const Shape& s : Shapes()) {
    std::fprintf(stderr, "gemm_bench: %s\n", s.name.c_str());
    const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    LRKV_TRY_ASSIGN(Tensor a, Tensor::Empty({s.m * s.k}, DType::kF32));
    LRKV_TRY_ASSIGN(Tensor b, Tensor::Empty({s.k * s.n}, DType::kF32));
    LRKV_TRY_ASSIGN(Tensor c, Tensor::Empty({s.m * s.n}, DType::kF32));
    for (Tensor* t : {&a, &b})
      for (int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = float((i * 7919) % 2001) / 1000.0f - 1.0f;
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* pc = c.data<float>();
    const double flops = 2.0 * s.m * s.n * s.k;
    const double openblas = bench::BestGflops(flops, repeats, [&] {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.m, s.n, s.k,
                  1.0f, pa, lda, pb, ldb, 0.0f, pc, s.n);
    });
    double onednn = 0;
#ifdef LRKV_HAVE_ONEDNN
    onednn = bench::BestGflops(flops, repeats, [&] {
      dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.m, s.n, s.k, 1.0f, pa, lda, pb, ldb, 0.0f, pc, s.n);
    });
#endif
    absl::Status status;
    const double runtime = bench::BestGflops(flops, repeats, [&] {
      status.Update(Gemm(a, b, c, GemmArgs::Dense(s.m, s.n, s.k, s.ta, s.tb), FlopCategory::kMlp));
    });
    LRKV_TRY(status);
    double packed = 0;  // B packed once (not timed), as a decoding model's weights are
    if (!s.ta && PackedLinearSuits(Device::kCpu, DType::kF32, s.m)) {
      LRKV_TRY_ASSIGN(const Tensor b2, b.View({s.tb ? s.n : s.k, s.tb ? s.k : s.n}));
      LRKV_TRY_ASSIGN(const Tensor pb_packed, PackLinearWeight(b2, /*transposed=*/s.tb));
      packed = bench::BestGflops(flops, repeats, [&] {
        status.Update(PackedLinearForward(a, pb_packed, c, FlopCategory::kMlp));
      });
      LRKV_TRY(status);
    }
    const std::string op = std::string(s.ta ? "T" : "N") + (s.tb ? "T" : "N");
    std::printf("| %s | %lld | %lld | %lld | %s | %.1f | %s | %.1f | %s |\n", s.name.c_str(), (long long)s.m,
                (long long)s.n, (long long)s.k, op.c_str(), openblas,
                onednn > 0 ? absl::StrFormat("%.1f", onednn).c_str() : "-", runtime,
                packed > 0 ? absl::StrFormat("%.1f", packed).c_str() : "-");
    rows.push_back({{"shape", s.name}, {"m", s.m}, {"n", s.n}, {"k", s.k}, {"op", op},
                    {"openblas_gflops", openblas}, {"onednn_gflops", onednn > 0 ? nlohmann::json(onednn) : nullptr},
                    {"runtime_gemm_gflops", runtime},
                    {"packed_b_gflops", packed > 0 ? nlohmann::json(packed) : nullptr}});
  }
  const nlohmann::json report = {{"benchmark", "gemm_cpu"},
                                 {"threads", omp_get_max_threads()},
                                 {"cpu", CpuDescription()},
                                 {"simd_bytes", cpu::kSimdBytes},
                                 {"cpu_gemm", CpuGemmLibraries()},
                                 {"repeats", repeats},
                                 {"shapes", rows}};
  return bench::WriteReport(absl::GetFlag(FLAGS_out), report.dump(2));
}

}  // namespace
}  // namespace lrkv

int main(int argc, char** argv) { return lrkv::bench::Main(argc, argv, "gemm_bench", lrkv::Run); }
