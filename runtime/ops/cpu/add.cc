#include "runtime/ops/add.h"
#include "runtime/ops/cpu/kernels.h"

namespace lrkv::cpu {
namespace {
template <typename T>
absl::Status Kernel(const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  const T *as = a.data<T>(), *bs = b.data<T>();
  T* os = out.data<T>();
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; ++i) os[i] = as[i] + bs[i];
  return absl::OkStatus();
}
}  // namespace

absl::Status Add(const Tensor& a, const Tensor& b, Tensor& out) {
  LRKV_CPU_FLOAT_DISPATCH(out.dtype(), Kernel, a, b, out);
}

}  // namespace lrkv::cpu
