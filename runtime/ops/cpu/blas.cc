#include "runtime/ops/cpu/blas.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef LRKV_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#endif

#include "absl/strings/str_cat.h"
#include "runtime/ops/gemm.h"

namespace lrkv::cpu {
namespace {

// oneDNN's sgemm (AVX-512 JIT kernels where the CPU has them) ran 1.5-2.5x OpenBLAS 0.3.21's on this
// project's machines for the models' shapes, the attention kernels' small tiles included, but one:
// B transposed and large with few rows of A (the LM head while decoding a batch), where oneDNN
// repacks all of B for a few output rows and runs at 0.5-0.9x OpenBLAS. That one is computed
// transposed, C^T = op(B)^T op(A)^T, which has many rows and B's rows in place (1.7x OpenBLAS's
// 16 x 50304 x 1536 LM head), then transposed into C. bench/gemm_bench measures them per shape
// (bench/results/gemm_cpu.json).
constexpr int64_t kFewRows = 64;
constexpr int64_t kLargeBElements = 1 << 20;

enum class Choice { kAuto, kOpenBlas, kInvalid };
Choice FromEnvironment() {
  static const Choice choice = [] {
    const char* v = std::getenv("LRKV_CPU_GEMM");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return Choice::kAuto;
    return std::strcmp(v, "openblas") == 0 ? Choice::kOpenBlas : Choice::kInvalid;
  }();
  return choice;
}

#ifdef LRKV_HAVE_ONEDNN
// Fails only on arguments no caller passes (negative sizes, leading dimensions too small): a bug.
void OneDnnGemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const dnnl_status_t s = dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (s == dnnl_success) return;
  std::fprintf(stderr, "lrkv: oneDNN sgemm %c%c m %lld n %lld k %lld lda %lld ldb %lld ldc %lld failed: %s\n", ta, tb,
               (long long)m, (long long)n, (long long)k, (long long)lda, (long long)ldb, (long long)ldc,
               dnnl_status2str(s));
  std::abort();
}

// C (m, n) = alpha op(A) B^T + beta C for few rows and a large B (n, k), through C^T (n, m) =
// B op(A)^T in a per-thread buffer.
void TransposedGemm(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  thread_local std::vector<float> ct;  // (n, m)
  ct.resize(size_t(n * m));
  OneDnnGemm('N', ta ? 'N' : 'T', n, m, k, alpha, b, ldb, a, lda, 0.0f, ct.data(), m);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& x = c[i * ldc + j];
      x = beta == 0.0f ? ct[j * m + i] : ct[j * m + i] + beta * x;  // beta 0 overwrites, NaN included
    }
}
#endif

}  // namespace

void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#ifdef LRKV_HAVE_ONEDNN
  if (FromEnvironment() == Choice::kAuto) {
    if (tb && m < kFewRows && n * k >= kLargeBElements)
      TransposedGemm(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
      OneDnnGemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#endif
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

absl::Status CheckGemmChoice() {
  if (FromEnvironment() != Choice::kInvalid) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("LRKV_CPU_GEMM=", std::getenv("LRKV_CPU_GEMM"), ": expected auto or openblas"));
}

}  // namespace lrkv::cpu

namespace lrkv {

std::string CpuGemmLibraries() {
  const std::string openblas = absl::StrCat(openblas_get_config(), " (", openblas_get_corename(), ")");
#ifdef LRKV_HAVE_ONEDNN
  if (cpu::FromEnvironment() == cpu::Choice::kAuto) {
    const dnnl_version_t* v = dnnl_version();
    return absl::StrCat("oneDNN ", v->major, ".", v->minor, ".", v->patch, " (",
                        dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()), ") + ", openblas);
  }
#endif
  return openblas;
}

}  // namespace lrkv
