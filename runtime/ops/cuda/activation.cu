// GELU (tanh), ReLU^2 and SwiGLU on CUDA: one thread per element (grid-stride), math in Acc<T>.
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/activation.h"
#include "runtime/ops/cuda/activation.cuh"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv::cuda {
namespace {

template <typename T>
absl::Status Forward(Activation act, const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  activation::ForwardKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(act == Activation::kGelu, x.data<T>(),
                                                                          y.data<T>(), n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}
template <typename T>
absl::Status Backward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx) {
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  activation::BackwardKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(act == Activation::kGelu, dy.data<T>(),
                                                                           x.data<T>(), dx.data<T>(), n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}
template <typename T>
absl::Status GluForward(const Tensor& gate, const Tensor& up, Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return absl::OkStatus();
  activation::GluForwardKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(gate.data<T>(), up.data<T>(), y.data<T>(),
                                                                             n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}
template <typename T>
absl::Status GluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  const int64_t n = dy.numel();
  if (n == 0) return absl::OkStatus();
  activation::GluBackwardKernel<<<GridFor(n), kThreads, 0, CurrentStream()>>>(
      dy.data<T>(), gate.data<T>(), up.data<T>(), dgate.data<T>(), dup.data<T>(), n);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status ActivationForward(Activation act, const Tensor& x, Tensor& y) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Forward, act, x, y);
}
absl::Status ActivationBackward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Backward, act, dy, x, dx);
}
absl::Status SwiGluForward(const Tensor& gate, const Tensor& up, Tensor& y) {
  LRKV_CUDA_FLOAT_DISPATCH(y.dtype(), GluForward, gate, up, y);
}
absl::Status SwiGluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  LRKV_CUDA_FLOAT_DISPATCH(dy.dtype(), GluBackward, dy, gate, up, dgate, dup);
}

}  // namespace lrkv::cuda
