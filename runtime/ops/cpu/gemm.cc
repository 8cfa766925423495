// CPU GEMM through blas.h (oneDNN or OpenBLAS by shape for float, OpenBLAS for double). Batched
// calls loop over the batch; each call is multithreaded by its library (both run on the OpenMP pool).
#include <cblas.h>

#include "runtime/ops/cpu/blas.h"
#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/gemm.h"

namespace lrkv::cpu {
namespace {

// k == 0 is legal (an LRKV rank of zero): C = beta * C, which BLAS implementations may skip.
template <typename T>
void ScaleOnly(T* c, const GemmArgs& g) {
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t i = 0; i < g.m; ++i)
      for (int64_t j = 0; j < g.n; ++j) {
        T& x = c[b * g.stride_c + i * g.ldc + j];
        x = g.beta == 0.0 ? T(0) : static_cast<T>(g.beta) * x;
      }
}

// One row of C (a decoding step's projections, its LM head): a matrix-vector product, which BLAS
// streams the matrix through faster than a one-row GEMM. c (1, n) = alpha a (1, k) op(B) + beta c.
template <typename T, typename Gemv>
bool RowTimesMatrix(Gemv gemv, const T* a, const T* b, T* c, const GemmArgs& g) {
  if (g.m != 1) return false;
  const int inc_a = g.trans_a ? int(g.lda) : 1;  // A^T stored (k, 1): its elements lda apart
  // Row-major B (k, n): c = B^T a; B^T stored (n, k): c = B a.
  gemv(CblasRowMajor, g.trans_b ? CblasNoTrans : CblasTrans, int(g.trans_b ? g.n : g.k), int(g.trans_b ? g.k : g.n),
       static_cast<T>(g.alpha), b, int(g.ldb), a, inc_a, static_cast<T>(g.beta), c, 1);
  return true;
}

// One batch entry: a matrix-vector product for one row (OpenBLAS's streams B at least as fast as
// oneDNN's one-row GEMM), otherwise blas.h's GEMM.
template <typename T, typename Gemv>
void BatchEntry(Gemv gemv, const T* a, const T* b, T* c, const GemmArgs& g, int64_t i) {
  a += i * g.stride_a;
  b += i * g.stride_b;
  c += i * g.stride_c;
  if (RowTimesMatrix(gemv, a, b, c, g)) return;
  Gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, static_cast<T>(g.alpha), a, g.lda, b, g.ldb, static_cast<T>(g.beta), c,
       g.ldc);
}
void BatchEntry(const float* a, const float* b, float* c, const GemmArgs& g, int64_t i) {
  BatchEntry(cblas_sgemv, a, b, c, g, i);
}
void BatchEntry(const double* a, const double* b, double* c, const GemmArgs& g, int64_t i) {
  BatchEntry(cblas_dgemv, a, b, c, g, i);
}

template <typename T>
absl::Status GemmKernel(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  LRKV_TRY(CheckGemmChoice());
  if (g.m == 0 || g.n == 0 || g.batch == 0) return absl::OkStatus();
  if (g.k == 0) {
    ScaleOnly(c.data<T>(), g);
    return absl::OkStatus();
  }
  for (int64_t i = 0; i < g.batch; ++i) BatchEntry(a.data<T>(), b.data<T>(), c.data<T>(), g, i);
  return absl::OkStatus();
}

}  // namespace

absl::Status Gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  LRKV_CPU_FLOAT_DISPATCH(a.dtype(), GemmKernel, a, b, c, g);
}

}  // namespace lrkv::cpu
