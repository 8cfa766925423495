// CUDA GEMM through cuBLASLt. Row-major C = op(A) op(B) is computed as the column-major product
// C^T = op(B)^T op(A)^T, so the operands are passed swapped and no data moves. Types: f32 (fp32
// compute, no TF32, so results match the CPU to ~1e-6), bf16 inputs with fp32 accumulation and
// scaling into a bf16 C or an fp32 C (a weight gradient accumulated in fp32, beta = 1), f64. The
// matmul descriptors, layouts and the heuristic's algorithm are cached per dtypes and shape
// (transposes, sizes, leading dimensions, batch and strides, pointer alignment).
#include <map>
#include <mutex>
#include <tuple>

#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/gemm.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/gemm.h"

namespace lrkv::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

struct Lt {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;  // cuBLAS's A (our B), B (our A), C
  cublasLtMatmulAlgo_t algo{};
};

// A's dtype, C's dtype, then the shape.
using Key = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, uint32_t, uint32_t, uint32_t>;

std::mutex mu;
std::map<Key, Plan>& Plans() {
  static auto* plans = new std::map<Key, Plan>;  // never destroyed: descriptors outlive static teardown
  return *plans;
}

absl::StatusOr<Lt*> GetLt() {
  static Lt lt;
  if (lt.handle == nullptr) {
    LRKV_CUDA_TRY(cublasLtCreate(&lt.handle));
    LRKV_CUDA_TRY(cudaMalloc(&lt.workspace, kWorkspaceBytes));
  }
  return &lt;
}

uint32_t Alignment(const void* p) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && u % a != 0) a >>= 1;
  return a;
}

template <typename T> struct LtTypes;
// A's and B's data type, and the compute and scale types, by A's element type.
template <> struct LtTypes<float> {
  static constexpr cudaDataType_t data = CUDA_R_32F, scale = CUDA_R_32F;
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  using Scale = float;
};
template <> struct LtTypes<bf16> {
  static constexpr cudaDataType_t data = CUDA_R_16BF, scale = CUDA_R_32F;
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  using Scale = float;
};
template <> struct LtTypes<double> {
  static constexpr cudaDataType_t data = CUDA_R_64F, scale = CUDA_R_64F;
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_64F;
  using Scale = double;
};

// C's data type: A's, or fp32 beside bf16 operands (the launcher allows only these).
cudaDataType_t CType(DType c) {
  switch (c) {
    case DType::kF64: return CUDA_R_64F;
    case DType::kBF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

absl::Status Layout(cublasLtMatrixLayout_t* layout, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                    int64_t batch, int64_t stride) {
  LRKV_CUDA_TRY(cublasLtMatrixLayoutCreate(layout, type, rows, cols, ld));
  const int32_t count = static_cast<int32_t>(batch);
  LRKV_CUDA_TRY(cublasLtMatrixLayoutSetAttribute(*layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
  LRKV_CUDA_TRY(
      cublasLtMatrixLayoutSetAttribute(*layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  return absl::OkStatus();
}

template <typename T>
absl::Status MakePlan(Lt& lt, const GemmArgs& g, cudaDataType_t c_type, uint32_t align_a, uint32_t align_b,
                      uint32_t align_c, Plan& p) {
  using Ty = LtTypes<T>;
  LRKV_CUDA_TRY(cublasLtMatmulDescCreate(&p.op, Ty::compute, Ty::scale));
  const cublasOperation_t ta = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's A is our B
  const cublasOperation_t tb = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  LRKV_CUDA_TRY(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  LRKV_CUDA_TRY(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  LRKV_TRY(Layout(&p.a, Ty::data, g.trans_b ? g.k : g.n, g.trans_b ? g.n : g.k, g.ldb, g.batch, g.stride_b));
  LRKV_TRY(Layout(&p.b, Ty::data, g.trans_a ? g.m : g.k, g.trans_a ? g.k : g.m, g.lda, g.batch, g.stride_a));
  LRKV_TRY(Layout(&p.c, c_type, g.n, g.m, g.ldc, g.batch, g.stride_c));

  struct PreferenceGuard {
    cublasLtMatmulPreference_t p = nullptr;
    ~PreferenceGuard() {
      if (p != nullptr) cublasLtMatmulPreferenceDestroy(p);
    }
  } pref;
  LRKV_CUDA_TRY(cublasLtMatmulPreferenceCreate(&pref.p));
  const uint64_t ws = kWorkspaceBytes;
  LRKV_CUDA_TRY(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
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
    return absl::UnimplementedError(absl::StrCat("cuBLASLt has no algorithm for a GEMM of m=", g.m, " n=", g.n, " k=", g.k, " batch=", g.batch));
  }
  p.algo = result.algo;
  return absl::OkStatus();
}

template <typename C>
absl::Status ScaleC(Tensor& c, const GemmArgs& g) {
  gemm::ScaleOnly<<<GridFor(g.batch * g.m * g.n), kThreads, 0, CurrentStream()>>>(c.data<C>(), g.m, g.n, g.ldc, g.stride_c,
                                                                           g.batch, g.beta);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

// T: A's and B's element type; C's is T or Acc<T>.
template <typename T>
absl::Status GemmKernel(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return absl::OkStatus();
  if (g.k == 0) return c.dtype() == a.dtype() ? ScaleC<T>(c, g) : ScaleC<Acc<T>>(c, g);
  LRKV_REQUIRE(g.batch <= INT32_MAX, "Gemm: batch ", g.batch, " too large for cuBLASLt");
  const uint32_t align_a = Alignment(a.raw()), align_b = Alignment(b.raw()), align_c = Alignment(c.raw());
  const Key key{static_cast<int>(a.dtype()), static_cast<int>(c.dtype()), g.trans_a, g.trans_b, g.m, g.n, g.k,
                g.lda, g.ldb, g.ldc, g.batch, g.stride_a, g.stride_b, g.stride_c, align_a, align_b, align_c};
  Plan plan;
  Lt* lt = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu);
    LRKV_TRY_ASSIGN(lt, GetLt());
    auto it = Plans().find(key);
    if (it == Plans().end()) {
      LRKV_TRY(MakePlan<T>(*lt, g, CType(c.dtype()), align_a, align_b, align_c, plan));
      Plans().emplace(key, plan);
    } else {
      plan = it->second;
    }
  }
  using S = typename LtTypes<T>::Scale;
  const S alpha = static_cast<S>(g.alpha), beta = static_cast<S>(g.beta);
  LRKV_CUDA_TRY(cublasLtMatmul(lt->handle, plan.op, &alpha, b.raw(), plan.a, a.raw(), plan.b, &beta, c.raw(), plan.c,
                               c.raw(), plan.c, &plan.algo, lt->workspace, kWorkspaceBytes, CurrentStream()));
  return absl::OkStatus();
}

}  // namespace

absl::Status Gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  LRKV_CUDA_FLOAT_DISPATCH(a.dtype(), GemmKernel, a, b, c, g);
}

}  // namespace lrkv::cuda
