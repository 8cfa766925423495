#include "runtime/ops/cpu/blas.h"

#include <algorithm>
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
#include "runtime/ops/cpu/register_tile_gemm.h"
#include "runtime/ops/gemm.h"

namespace lrkv::cpu {
namespace {

// oneDNN's sgemm (AVX-512 JIT kernels where the CPU has them) ran 1.5-2.5x OpenBLAS 0.3.21's on this
// project's machines for the models' shapes, the attention kernels' small tiles included, but one:
// B transposed and large with few rows of A (the LM head while decoding a batch), where oneDNN
// repacks all of B for a few output rows and runs at 0.5-0.9x OpenBLAS. That one is computed
// transposed, C^T = B op(A)^T, which has many rows and B's rows in place, then transposed into C:
// from kStreamedMinRows rows of A on as register tile products that stream B through once (10.2
// against 15.5 ms for oneDNN's C^T at the 16 x 50304 x 1536 LM head, both best of 8, B out of
// cache; a plain read of B took 9.6 ms then), with fewer rows on oneDNN (OpenBLAS in a build
// without it), for which the padding to a whole vector of rows would be most of the work. Called
// inside an OpenMP region (an attention kernel's tile), the streamed path's own region runs on the
// calling thread. bench/gemm_bench measures them per shape
// (bench/results/gemm_cpu.json).
constexpr int64_t kFewRows = 64;
constexpr int64_t kLargeBElements = 1 << 20;
constexpr int64_t kStreamedMinRows = 8;
constexpr int64_t kStreamedChunk = 64;  // rows of B per task: a (64, m) tile of C^T, then into C

enum class Choice { kAuto, kOpenBlas, kInvalid };
Choice FromEnvironment() {
  static const Choice choice = [] {
    const char* v = std::getenv("LRKV_CPU_GEMM");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return Choice::kAuto;
    return std::strcmp(v, "openblas") == 0 ? Choice::kOpenBlas : Choice::kInvalid;
  }();
  return choice;
}

// C (m, columns [first, first + rows)) = ct^T + beta C there, from ct (rows, m; row stride ld_ct), a
// slice of C^T.
void WriteTransposed(const float* ct, int64_t ld_ct, int64_t m, int64_t first, int64_t rows, float beta, float* c,
                     int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < rows; ++j) {
      float& x = c[i * ldc + first + j];
      x = beta == 0.0f ? ct[j * ld_ct + i] : ct[j * ld_ct + i] + beta * x;  // beta 0 overwrites, NaN included
    }
}

// TransposedGemm's C^T = B op(A)^T as register tile products, kStreamedChunk rows of B per task:
// op(A)^T scaled by alpha is copied once into a (k, m) tile padded to whole vectors, and each task
// reads its rows of B in place, once.
void StreamedTransposedGemm(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                            const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t padded = RoundUpToVectors<float>(m);
  std::vector<float> at(size_t(k * padded), 0.0f), zero(size_t(padded), 0.0f);  // (k, padded), (padded)
  ScaledTransposeInto(a, m, k, ta ? 1 : lda, ta ? lda : 1, alpha, padded, at.data());
#pragma omp parallel
  {
    std::vector<float> ct(size_t(kStreamedChunk * padded));  // (chunk, padded): C^T's rows
#pragma omp for schedule(static)
    for (int64_t first = 0; first < n; first += kStreamedChunk) {
      const int64_t rows = std::min(kStreamedChunk, n - first);
      TileProduct(rows, Tile<float>{b + first * ldb, ldb, at.data(), padded, zero.data(), 0, ct.data(), padded,
                                    padded, k});
      WriteTransposed(ct.data(), padded, m, first, rows, beta, c, ldc);
    }
  }
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
  WriteTransposed(ct.data(), m, m, 0, n, beta, c, ldc);
}
#endif

}  // namespace

void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const bool few_rows_large_b = tb && m < kFewRows && n * k >= kLargeBElements;
  if (FromEnvironment() == Choice::kAuto && few_rows_large_b && m >= kStreamedMinRows) {
    StreamedTransposedGemm(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#ifdef LRKV_HAVE_ONEDNN
  if (FromEnvironment() == Choice::kAuto) {
    if (few_rows_large_b)
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
