// GEMM: C = alpha * op(A) op(B) + beta * C, row-major, optionally batched with constant strides.
// op(A) is (m, k), op(B) is (k, n), C is (m, n). Counts 2*m*n*k*batch FLOPs into `category`.
// A and B share a dtype; C has it or its AccumDType (bf16 x bf16 into an fp32 weight gradient).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "runtime/flop_counter.h"
#include "runtime/tensor.h"

namespace lrkv {

struct GemmArgs {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;  // leading dimensions (row strides) of the stored matrices
  double alpha = 1.0;
  double beta = 0.0;
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // element offsets between batch entries

  // Dense matrices with no padding: lda/ldb/ldc follow from m, n, k and the transposes.
  static GemmArgs Dense(int64_t m, int64_t n, int64_t k, bool trans_a = false, bool trans_b = false);
};

absl::Status Gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& args, FlopCategory category);

// Which libraries the CPU backend's float GEMMs run on, for benchmark reports: "oneDNN 2.6.3 (avx512_core)
// + OpenBLAS 0.3.21 (Haswell)", or OpenBLAS alone (no oneDNN in the build, or LRKV_CPU_GEMM=openblas).
std::string CpuGemmLibraries();

}  // namespace lrkv
