// Writes tensors as NumPy .npy files (format version 1.0): parameter dumps and reference tests.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status WriteNpy(const std::string& path, const Tensor& t);

}  // namespace lrkv
