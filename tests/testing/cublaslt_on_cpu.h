// cuBLASLt's matmul calls carried out on the CPU, for tests/unit/cublaslt_gemm_on_cpu_test.cc: a
// test executable linked with cublaslt_on_cpu.cc gets these definitions of cublasLtCreate,
// cublasLtMatmulDescCreate / SetAttribute, cublasLtMatrixLayoutCreate / SetAttribute, the matmul
// preference's calls, cublasLtMatmulAlgoGetHeuristic and cublasLtMatmul instead of the library's
// (an executable's symbols come before a shared library's), and no GPU is needed.
//
// They follow cuBLASLt's documented semantics, strictly where a caller could go wrong: column-major
// layouts (element (i, j) at i + j ld, ld >= rows), op(A) (m, k) and op(B) (k, n) into D (m, n),
// layouts checked against the transposes, strided batches, only the data / compute / scale type
// combinations the library supports for these types, attribute buffers of the attribute's size,
// and each pointer, every batch entry's, aligned as the algorithm was chosen for (the heuristic's minimum alignments;
// on a GPU a misaligned operand is an error or a fault). A call that breaks one returns
// CUBLAS_STATUS_INVALID_VALUE or CUBLAS_STATUS_NOT_SUPPORTED and says why on stderr. Arithmetic is
// in double, rounded once into D's type.
#pragma once

namespace lrkv::testing::cublaslt_on_cpu {

// Calls so far, for tests of the plan cache.
struct Counts {
  int matmul_descs = 0;  // cublasLtMatmulDescCreate
  int heuristics = 0;    // cublasLtMatmulAlgoGetHeuristic
  int matmuls = 0;       // cublasLtMatmul that computed
};
Counts GetCounts();

}  // namespace lrkv::testing::cublaslt_on_cpu
