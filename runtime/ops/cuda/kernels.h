// The CUDA backend's kernels, one source per op (ops/cuda/<op>.cu), each reached through the CUDA
// table (ops/cuda/backend.cc, built only with LRKV_HAVE_CUDA), not called directly: the launchers in
// ops/<op>.h check the arguments first. Plain C++ declarations, so host code may include this.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/ops/backend.h"  // the list of kernels and the types they take
#include "runtime/tensor.h"

namespace lrkv::cuda {

// This backend's table, filled in ops/cuda/backend.cc (CUDA builds only); reached through
// BackendOf (ops/backend.h).
const Backend& Table();

// Every kernel of ops/backend.h's list, under its function name.
#define LRKV_DECLARE_KERNEL_(member, function, params) absl::Status function params;
LRKV_BACKEND_KERNELS(LRKV_DECLARE_KERNEL_)
#undef LRKV_DECLARE_KERNEL_

}  // namespace lrkv::cuda
