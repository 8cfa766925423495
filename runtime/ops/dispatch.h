// How an op's launcher reaches its backend: the launcher checks shapes, dtypes and devices once, then
// calls the function of the same name in namespace cpu:: or cuda:: for the device of its tensors.
// A backend that this build lacks answers Unimplemented, never a crash.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/dtype.h"

#ifdef LRKV_HAVE_CUDA
#define LRKV_CUDA_CASE_(fn, ...) return cuda::fn(__VA_ARGS__)
#else
#define LRKV_CUDA_CASE_(fn, ...) \
  return absl::UnimplementedError(absl::StrCat(#fn, ": this build has no CUDA backend"))
#endif

#define LRKV_DISPATCH(device, fn, ...)        \
  switch (device) {                           \
    case ::lrkv::Device::kCpu:                \
      return cpu::fn(__VA_ARGS__);            \
    case ::lrkv::Device::kCuda:               \
      LRKV_CUDA_CASE_(fn, __VA_ARGS__);       \
  }                                           \
  return absl::InternalError("unknown device")

// Inside a CPU kernel file: instantiate the kernel template for the tensor's floating dtype.
#define LRKV_CPU_FLOAT_DISPATCH(dtype, kernel, ...)                                         \
  switch (dtype) {                                                                          \
    case ::lrkv::DType::kF32:                                                               \
      return kernel<float>(__VA_ARGS__);                                                    \
    case ::lrkv::DType::kF64:                                                               \
      return kernel<double>(__VA_ARGS__);                                                   \
    default:                                                                                \
      return absl::UnimplementedError(                                                      \
          absl::StrCat(#kernel, ": dtype ", ::lrkv::DTypeName(dtype), " not supported on cpu")); \
  }
