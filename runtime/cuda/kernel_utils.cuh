// Host-side helpers of the CUDA kernels' launchers (runtime/ops/cuda/*.cu): the column sums'
// second stage, token ids on the device, and the dtype dispatch; the kernels' own helpers are in
// device_math.cuh, which this includes.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dtype.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace lrkv::cuda {

// out (C) += sum_chunk partial (chunks, C), written in out's dtype: T or Acc<T>.
template <typename T>
absl::Status FinishInto(const Acc<T>* partial, int64_t chunks, int64_t c, Tensor& out) {
  if (out.dtype() == DTypeOf<Acc<T>>::value) {
    FinishColumnSums<<<GridFor(c), kThreads, 0, CurrentStream()>>>(partial, chunks, c, out.data<Acc<T>>());
  } else {
    FinishColumnSums<<<GridFor(c), kThreads, 0, CurrentStream()>>>(partial, chunks, c, out.data<T>());
  }
  LRKV_CUDA_TRY_LAUNCH();
  return absl::OkStatus();
}

// An i32 tensor (token ids, targets) on the device: `t` itself, or an uploaded copy of a host tensor.
inline absl::StatusOr<Tensor> OnDevice(const Tensor& t) {
  if (t.device() == Device::kCuda) return t;
  LRKV_TRY_ASSIGN(Tensor d, Tensor::Empty(t.shape(), t.dtype(), Device::kCuda));
  LRKV_TRY(d.CopyFrom(t));
  return d;
}

}  // namespace lrkv::cuda

// Inside a CUDA kernel file: instantiate the launcher template for the tensor's floating dtype.
#define LRKV_CUDA_FLOAT_DISPATCH(dtype, kernel, ...)                                              \
  switch (dtype) {                                                                                \
    case ::lrkv::DType::kF32:                                                                     \
      return kernel<float>(__VA_ARGS__);                                                          \
    case ::lrkv::DType::kF64:                                                                     \
      return kernel<double>(__VA_ARGS__);                                                         \
    case ::lrkv::DType::kBF16:                                                                    \
      return kernel<::lrkv::cuda::bf16>(__VA_ARGS__);                                             \
    default:                                                                                      \
      return absl::UnimplementedError(                                                            \
          absl::StrCat(#kernel, ": dtype ", ::lrkv::DTypeName(dtype), " not supported on cuda")); \
  }
