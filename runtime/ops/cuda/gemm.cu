// CUDA GEMM: cuBLASLt for k >= 1 (cublaslt_gemm.h: the operand swap, layouts and plan cache), and
// gemm.cuh's kernel for k = 0, where C is only scaled.
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/cublaslt_gemm.h"
#include "runtime/ops/cuda/gemm.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/gemm.h"

namespace lrkv::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// The process's cuBLASLt handle and workspace, made on first use.
absl::StatusOr<const cublaslt::Context*> LtContext() {
  static std::mutex mu;
  static cublaslt::Context lt;
  std::lock_guard<std::mutex> lock(mu);
  if (lt.handle == nullptr) {
    if (lt.workspace == nullptr) LRKV_CUDA_TRY(cudaMalloc(&lt.workspace, kWorkspaceBytes));
    LRKV_CUDA_TRY(cublasLtCreate(&lt.handle));  // on failure the workspace stays for the next try
    lt.workspace_bytes = kWorkspaceBytes;
  }
  return &lt;
}

cublaslt::PlanCache& Plans() {
  static auto* plans = new cublaslt::PlanCache;  // never destroyed: descriptors outlive static teardown
  return *plans;
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
  LRKV_TRY_ASSIGN(const cublaslt::Context* lt, LtContext());
  return cublaslt::Matmul(*lt, Plans(), a, b, c, g, CurrentStream());
}

}  // namespace

absl::Status Gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  LRKV_CUDA_FLOAT_DISPATCH(a.dtype(), GemmKernel, a, b, c, g);
}

}  // namespace lrkv::cuda
