// Rotary position embedding on CUDA: one thread per pass-through entry or rotated pair. Angles are
// computed in double (as on the CPU) and the rotation in Acc<T>. y may alias x: each pair is read
// and written by the same thread.
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/cuda/rope.cuh"
#include "runtime/ops/rope.h"

namespace lrkv::cuda {
namespace {

template <typename T>
absl::Status Kernel(const Tensor& x, int64_t rope_dims, double theta, double direction, int64_t first_position,
                    Tensor& y) {
  const int64_t b = x.dim(0), t = x.dim(1), h = x.dim(2), d = x.dim(3);
  const int64_t rows = b * t * h, work = rows * (d - rope_dims / 2);
  if (work == 0) return absl::OkStatus();
  rope::RopeKernel<<<GridFor(work), kThreads, 0, CurrentStream()>>>(x.data<T>(), y.data<T>(), rows, t, h, d, rope_dims,
                                                                    theta, direction, first_position);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status Rope(const Tensor& x, int64_t rope_dims, double theta, double direction, int64_t first_position,
                  Tensor& y) {
  LRKV_CUDA_FLOAT_DISPATCH(x.dtype(), Kernel, x, rope_dims, theta, direction, first_position, y);
}

}  // namespace lrkv::cuda
