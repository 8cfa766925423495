// Writes tensors as NumPy .npy files (format version 1.0), for the PyTorch reference tests.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace lrkv::testing {

absl::Status WriteNpy(const std::string& path, const Tensor& t);

}  // namespace lrkv::testing
