// The CPU kernels' GEMM, in float and double under one name: the Gemm op's and the one the attention
// kernels call on their own tiles (inside an OpenMP region it runs on the calling thread). Float
// goes to oneDNN's JIT sgemm, to OpenBLAS or, for a few rows against a large transposed B, to
// register tile products, whichever is fastest for the shape (blas.cc says how it chooses); double
// to OpenBLAS.
#pragma once

#include <cblas.h>

#include <cstdint>

#include "absl/status/status.h"

namespace lrkv::cpu {

// C (m, n) = alpha op(A) op(B) + beta C, row-major with leading dimensions.
void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
inline void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                 const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

// LRKV_CPU_GEMM names the float GEMM library: unset or `auto` (the choice by shape) or `openblas`
// (every float GEMM on OpenBLAS: the digits of results computed before oneDNN was used). Any other
// value is refused here, by the Gemm op, before anything runs; Gemm itself then uses OpenBLAS.
absl::Status CheckGemmChoice();

}  // namespace lrkv::cpu
