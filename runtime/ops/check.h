// Argument checks shared by the op launchers. Each returns InvalidArgument naming the op and tensor.
#pragma once

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "runtime/tensor.h"

namespace lrkv {

// `t` is defined and has exactly `shape`.
absl::Status CheckShape(const char* op, const char* name, const Tensor& t, const Shape& shape);
// All tensors are defined (a null entry is skipped) and share the first one's device and dtype.
absl::Status CheckSameDeviceAndDType(const char* op, absl::Span<const Tensor* const> tensors);
absl::Status CheckDType(const char* op, const char* name, const Tensor& t, DType dtype);
// `t`, an output accumulated beside tensors of dtype `compute` (a parameter gradient, a GEMM's C),
// has `compute` or AccumDType(compute): bf16 activations may add into fp32 gradients.
absl::Status CheckAccumulatorDType(const char* op, const char* name, const Tensor& t, DType compute);

}  // namespace lrkv
