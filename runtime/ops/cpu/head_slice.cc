#include <algorithm>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/head_slice.h"

namespace lrkv::cpu {
namespace {

template <typename T>
absl::Status Copy(const Tensor& src, int64_t offset, Tensor& dst) {
  const int64_t n = dst.dim(0), h = dst.dim(1), dd = dst.dim(2), hs = src.dim(1), ds = src.dim(2);
  const T* s = src.data<T>();
  T* d = dst.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    for (int64_t hi = 0; hi < h; ++hi) {
      const T* from = s + (i * hs + (hs == 1 ? 0 : hi)) * ds;
      std::copy(from, from + ds, d + (i * h + hi) * dd + offset);
    }
  return absl::OkStatus();
}

template <typename T>
absl::Status Reduce(const Tensor& ddst, int64_t offset, Tensor& dsrc) {
  const int64_t n = ddst.dim(0), h = ddst.dim(1), dd = ddst.dim(2), hs = dsrc.dim(1), ds = dsrc.dim(2);
  const T* g = ddst.data<T>();
  T* out = dsrc.data<T>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    std::fill_n(out + i * hs * ds, hs * ds, T(0));
    for (int64_t hi = 0; hi < h; ++hi) {
      T* to = out + (i * hs + (hs == 1 ? 0 : hi)) * ds;
      const T* from = g + (i * h + hi) * dd + offset;
      for (int64_t j = 0; j < ds; ++j) to[j] += from[j];
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CopyToHeadSlice(const Tensor& src, int64_t offset, Tensor& dst) {
  LRKV_CPU_FLOAT_DISPATCH(dst.dtype(), Copy, src, offset, dst);
}
absl::Status ReduceFromHeadSlice(const Tensor& ddst, int64_t offset, Tensor& dsrc) {
  LRKV_CPU_FLOAT_DISPATCH(ddst.dtype(), Reduce, ddst, offset, dsrc);
}

}  // namespace lrkv::cpu
