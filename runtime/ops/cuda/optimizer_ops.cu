// Optimizer ops on CUDA: the squared norm (fp64 accumulation: per-block partial sums in double,
// then one block sums the partials, deterministic), in-place scaling, and the fused AdamW update.
// With bf16 parameters, m and v are bf16 too (the launcher requires one dtype); the mixed-precision
// design keeps fp32 master weights and optimizer state, so AdamW normally runs on f32 tensors.
#include <cmath>

#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/cuda/optimizer_ops.cuh"
#include "runtime/ops/optimizer_ops.h"

namespace lrkv::cuda {
namespace {

template <typename T>
absl::Status SumSq(const Tensor& x, double* out) {
  const int64_t n = x.numel();
  if (n == 0) {
    *out = 0;
    return absl::OkStatus();
  }
  const int blocks = static_cast<int>(std::min<int64_t>(optimizer::kSumBlocks, GridFor(n)));
  LRKV_TRY_ASSIGN(Tensor partial, Tensor::Empty({blocks + 1}, DType::kF64, Device::kCuda));
  double* ps = partial.data<double>();
  optimizer::PartialSumSquares<<<blocks, kThreads, 0, CurrentStream()>>>(x.data<T>(), n, ps);
  LRKV_CUDA_TRY_LAUNCH();
  optimizer::SumPartials<<<1, kThreads, 0, CurrentStream()>>>(ps, blocks, ps + blocks);
  LRKV_CUDA_TRY_LAUNCH();
  LRKV_CUDA_TRY(cudaMemcpyAsync(out, ps + blocks, sizeof(double), cudaMemcpyDeviceToHost, CurrentStream()));
  LRKV_CUDA_TRY(cudaStreamSynchronize(CurrentStream()));
  return absl::OkStatus();
}

template <typename T>
absl::Status ScaleLauncher(Tensor& x, double factor) {
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  optimizer::ScaleKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(x.data<T>(), n, factor);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Adam(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  using A = Acc<T>;
  const int64_t n = param.numel();
  if (n == 0) return absl::OkStatus();
  const A c1 = A(1.0 / (1.0 - std::pow(s.beta1, double(s.step))));
  const A c2 = A(1.0 / (1.0 - std::pow(s.beta2, double(s.step))));
  optimizer::AdamKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(param.data<T>(), grad.data<T>(), m.data<T>(),
                                                                      v.data<T>(), n, A(s.beta1), A(s.beta2), A(s.lr),
                                                                      A(s.weight_decay), A(s.eps), c1, c2);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status SumSquares(const Tensor& x, double* out) { LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), SumSq, x, out); }
absl::Status Scale(Tensor& x, double factor) { LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), ScaleLauncher, x, factor); }
absl::Status AdamWUpdate(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  LRKV_CUDA_FLOAT_DISPATCH(param.dtype(), Adam, param, grad, m, v, s);
}

}  // namespace lrkv::cuda
