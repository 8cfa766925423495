// The CUDA GEMM's host side: how a row-major lrkv GEMM becomes one cuBLASLt matmul. Row-major
// C = op(A) op(B) is computed as the column-major product C^T = op(B)^T op(A)^T, so the operands are
// passed swapped and no data moves. Types: f32 (fp32 compute, no TF32, so results match the CPU to
// ~1e-6), bf16 inputs with fp32 accumulation and scaling into a bf16 C or an fp32 C (a weight
// gradient accumulated in fp32, beta = 1), f64. The matmul descriptors, layouts and the heuristic's
// algorithm are cached per dtypes and shape (transposes, sizes, leading dimensions, batch and
// strides, pointer alignment).
//
// Host code only, apart from gemm.cu's kernel: gemm.cu calls it on the GPU, and
// tests/unit/cublaslt_gemm_on_cpu_test.cc calls it against tests/testing/cublaslt_on_cpu.cc, the
// cuBLASLt calls below carried out on the CPU as cuBLASLt documents them, so that the operand swap,
// the layouts and the batch strides run in every build.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/cuda/check.h"
#include "runtime/ops/gemm.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace lrkv::cuda::cublaslt {

// A handle and the workspace its matmuls may use.
struct Context {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// One GEMM shape's descriptors and algorithm.
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;  // cuBLAS's A (our B), B (our A), C
  cublasLtMatmulAlgo_t algo{};
};

// A's dtype, C's dtype, then the shape.
using PlanKey = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, uint32_t, uint32_t, uint32_t>;

// The plans made so far, never destroyed: descriptors outlive static teardown.
struct PlanCache {
  std::mutex mu;
  std::map<PlanKey, Plan> plans;
};

// The largest power of two up to 256 that divides the address.
inline uint32_t Alignment(const void* p) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && u % a != 0) a >>= 1;
  return a;
}

// What every batch entry of an operand is aligned to: the first entry's address and, with several
// entries, the stride between them in bytes (entry i is at p + i * stride), so that an algorithm is
// chosen for the least aligned entry.
inline uint32_t OperandAlignment(const void* p, int64_t batch, int64_t stride, size_t element_bytes) {
  const uint32_t first = Alignment(p);
  if (batch <= 1) return first;
  return std::min(first, Alignment(reinterpret_cast<const void*>(uintptr_t(stride) * element_bytes)));
}

// A's and B's data type, the compute type and the scale type, by A's dtype.
struct Types {
  cudaDataType_t data, scale;
  cublasComputeType_t compute;
};
inline absl::StatusOr<Types> TypesOf(DType a) {
  switch (a) {
    case DType::kF32:
      return Types{CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::kBF16:
      return Types{CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::kF64:
      return Types{CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F};
    default:
      return absl::UnimplementedError(absl::StrCat("Gemm: dtype ", DTypeName(a), " not supported on cuda"));
  }
}

// C's data type: A's, or fp32 beside bf16 operands (the Gemm op allows only these).
inline cudaDataType_t CType(DType c) {
  switch (c) {
    case DType::kF64:
      return CUDA_R_64F;
    case DType::kBF16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

// A column-major layout: rows x cols at leading dimension ld, `batch` of them `stride` apart.
inline absl::Status Layout(cublasLtMatrixLayout_t* layout, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                           int64_t batch, int64_t stride) {
  LRKV_CUDA_TRY(cublasLtMatrixLayoutCreate(layout, type, rows, cols, ld));
  const int32_t count = static_cast<int32_t>(batch);
  LRKV_CUDA_TRY(cublasLtMatrixLayoutSetAttribute(*layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
  LRKV_CUDA_TRY(
      cublasLtMatrixLayoutSetAttribute(*layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  return absl::OkStatus();
}

// The descriptors of C^T = op(B)^T op(A)^T and the heuristic's best algorithm for them under the
// operands' alignments.
inline absl::Status MakePlan(const Context& lt, const GemmArgs& g, const Types& ty, cudaDataType_t c_type,
                             uint32_t align_a, uint32_t align_b, uint32_t align_c, Plan& p) {
  LRKV_CUDA_TRY(cublasLtMatmulDescCreate(&p.op, ty.compute, ty.scale));
  const cublasOperation_t ta = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's A is our B
  const cublasOperation_t tb = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  LRKV_CUDA_TRY(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  LRKV_CUDA_TRY(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  // Our row-major B (k, n), or (n, k) transposed, is column-major (n, k) or (k, n) at ldb.
  LRKV_TRY(Layout(&p.a, ty.data, g.trans_b ? g.k : g.n, g.trans_b ? g.n : g.k, g.ldb, g.batch, g.stride_b));
  LRKV_TRY(Layout(&p.b, ty.data, g.trans_a ? g.m : g.k, g.trans_a ? g.k : g.m, g.lda, g.batch, g.stride_a));
  LRKV_TRY(Layout(&p.c, c_type, g.n, g.m, g.ldc, g.batch, g.stride_c));

  struct PreferenceGuard {
    cublasLtMatmulPreference_t p = nullptr;
    ~PreferenceGuard() {
      if (p != nullptr) cublasLtMatmulPreferenceDestroy(p);
    }
  } pref;
  LRKV_CUDA_TRY(cublasLtMatmulPreferenceCreate(&pref.p));
  const uint64_t ws = lt.workspace_bytes;
  LRKV_CUDA_TRY(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}};
  for (const auto& [attr, value] : aligns) {
    LRKV_CUDA_TRY(cublasLtMatmulPreferenceSetAttribute(pref.p, attr, &value, sizeof(value)));
  }
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  LRKV_CUDA_TRY(cublasLtMatmulAlgoGetHeuristic(lt.handle, p.op, p.a, p.b, p.c, p.c, pref.p, 1, &result, &returned));
  if (returned == 0) {
    return absl::UnimplementedError(
        absl::StrCat("cuBLASLt has no algorithm for a GEMM of m=", g.m, " n=", g.n, " k=", g.k, " batch=", g.batch));
  }
  p.algo = result.algo;
  return absl::OkStatus();
}

// C = alpha op(A) op(B) + beta C on `stream`, for k >= 1 (cuBLASLt takes no empty inner dimension:
// gemm.cu scales C itself then). The tensors' shapes are the Gemm op's to check, not this.
inline absl::Status Matmul(const Context& lt, PlanCache& cache, const Tensor& a, const Tensor& b, Tensor& c,
                           const GemmArgs& g, cudaStream_t stream) {
  LRKV_REQUIRE(g.batch <= INT32_MAX, "Gemm: batch ", g.batch, " too large for cuBLASLt");
  LRKV_TRY_ASSIGN(const Types ty, TypesOf(a.dtype()));
  const uint32_t align_a = OperandAlignment(a.raw(), g.batch, g.stride_a, DTypeSize(a.dtype()));
  const uint32_t align_b = OperandAlignment(b.raw(), g.batch, g.stride_b, DTypeSize(b.dtype()));
  const uint32_t align_c = OperandAlignment(c.raw(), g.batch, g.stride_c, DTypeSize(c.dtype()));
  const PlanKey key{static_cast<int>(a.dtype()),
                    static_cast<int>(c.dtype()),
                    g.trans_a,
                    g.trans_b,
                    g.m,
                    g.n,
                    g.k,
                    g.lda,
                    g.ldb,
                    g.ldc,
                    g.batch,
                    g.stride_a,
                    g.stride_b,
                    g.stride_c,
                    align_a,
                    align_b,
                    align_c};
  Plan plan;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.plans.find(key);
    if (it == cache.plans.end()) {
      LRKV_TRY(MakePlan(lt, g, ty, CType(c.dtype()), align_a, align_b, align_c, plan));
      cache.plans.emplace(key, plan);
    } else {
      plan = it->second;
    }
  }
  // alpha and beta in the scale type: fp32, or fp64 for f64.
  const float alpha32 = static_cast<float>(g.alpha), beta32 = static_cast<float>(g.beta);
  const void* alpha = ty.scale == CUDA_R_64F ? static_cast<const void*>(&g.alpha) : &alpha32;
  const void* beta = ty.scale == CUDA_R_64F ? static_cast<const void*>(&g.beta) : &beta32;
  LRKV_CUDA_TRY(cublasLtMatmul(lt.handle, plan.op, alpha, b.raw(), plan.a, a.raw(), plan.b, beta, c.raw(), plan.c,
                               c.raw(), plan.c, &plan.algo, lt.workspace, lt.workspace_bytes, stream));
  return absl::OkStatus();
}

}  // namespace lrkv::cuda::cublaslt
