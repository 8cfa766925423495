// The CPU backend's kernels, one source per op (ops/cpu/<op>.cc), each reached through the CPU
// table (ops/cpu/backend.cc), not called directly: the launchers in ops/<op>.h check the arguments
// first. Templated on f32/f64 inside each source (LRKV_CPU_FLOAT_DISPATCH), OpenMP-parallel.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/dtype.h"
#include "runtime/ops/backend.h"  // the list of kernels and the types they take
#include "runtime/tensor.h"

namespace lrkv::cpu {

// This backend's table, filled in ops/cpu/backend.cc; reached through BackendOf (ops/backend.h).
const Backend& Table();

// Every kernel of ops/backend.h's list, under its function name.
#define LRKV_DECLARE_KERNEL_(member, function, params) absl::Status function params;
LRKV_BACKEND_KERNELS(LRKV_DECLARE_KERNEL_)
#undef LRKV_DECLARE_KERNEL_

}  // namespace lrkv::cpu

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
