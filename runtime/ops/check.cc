#include "runtime/ops/check.h"

#include "absl/strings/str_cat.h"

namespace lrkv {

absl::Status CheckShape(const char* op, const char* name, const Tensor& t, const Shape& shape) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " is undefined"));
  if (t.shape() != shape) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " has shape ", ShapeString(t.shape()),
                                                   ", expected ", ShapeString(shape)));
  }
  return absl::OkStatus();
}

absl::Status CheckSameDeviceAndDType(const char* op, absl::Span<const Tensor* const> tensors) {
  const Tensor* first = *tensors.begin();
  for (const Tensor* t : tensors) {
    if (t == nullptr) continue;
    if (!t->defined()) return absl::InvalidArgumentError(absl::StrCat(op, ": undefined tensor argument"));
    if (t->device() != first->device() || t->dtype() != first->dtype()) {
      return absl::InvalidArgumentError(absl::StrCat(op, ": tensors disagree in device or dtype: ",
                                                     first->DebugString(), " vs ", t->DebugString()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDType(const char* op, const char* name, const Tensor& t, DType dtype) {
  if (t.dtype() != dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", name, " has dtype ", DTypeName(t.dtype()), ", expected ", DTypeName(dtype)));
  }
  return absl::OkStatus();
}

absl::Status CheckAccumulatorDType(const char* op, const char* name, const Tensor& t, DType compute) {
  if (t.dtype() != compute && t.dtype() != AccumDType(compute)) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " has dtype ", DTypeName(t.dtype()), ", expected ",
                                                   DTypeName(compute), " or ", DTypeName(AccumDType(compute))));
  }
  return absl::OkStatus();
}

}  // namespace lrkv
