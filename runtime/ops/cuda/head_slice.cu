// Head-slice copy and its reduction on CUDA: one thread per destination (or source) element; the
// reduction sums over the heads in a loop, so no atomics and a deterministic order.
#include "runtime/cuda/kernel_utils.cuh"
#include "runtime/ops/cuda/head_slice.cuh"
#include "runtime/ops/cuda/kernels.h"
#include "runtime/ops/head_slice.h"

namespace lrkv::cuda {
namespace {

template <typename T>
absl::Status Copy(const Tensor& src, int64_t offset, Tensor& dst) {
  const int64_t n = dst.dim(0), h = dst.dim(1), dd = dst.dim(2), hs = src.dim(1), ds = src.dim(2);
  if (n * h * ds == 0) return absl::OkStatus();
  head_slice::CopyKernel<<<GridFor(n * h * ds), kThreads, 0, CurrentStream()>>>(src.data<T>(), dst.data<T>(), n, h, dd,
                                                                                hs, ds, offset);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

template <typename T>
absl::Status Reduce(const Tensor& ddst, int64_t offset, Tensor& dsrc) {
  const int64_t n = ddst.dim(0), h = ddst.dim(1), dd = ddst.dim(2), hs = dsrc.dim(1), ds = dsrc.dim(2);
  if (n * hs * ds == 0) return absl::OkStatus();
  head_slice::ReduceKernel<<<GridFor(n * hs * ds), kThreads, 0, CurrentStream()>>>(ddst.data<T>(), dsrc.data<T>(), n, h,
                                                                                   dd, hs, ds, offset);
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

}  // namespace

absl::Status CopyToHeadSlice(const Tensor& src, int64_t offset, Tensor& dst) {
  LRKV_CUDA_FLOAT_DISPATCH(dst.dtype(), Copy, src, offset, dst);
}
absl::Status ReduceFromHeadSlice(const Tensor& ddst, int64_t offset, Tensor& dsrc) {
  LRKV_CUDA_FLOAT_DISPATCH(ddst.dtype(), Reduce, ddst, offset, dsrc);
}

}  // namespace lrkv::cuda
