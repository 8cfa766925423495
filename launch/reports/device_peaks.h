// Datasheet peak FLOP/s and memory of accelerators, for MFU and GPU-hour projections when the peak cannot be
// measured (no such device here). Depends on Abseil only, so the trainer can reuse it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv {

struct DevicePeak {
  const char* name;   // e.g. "h100-sxm-bf16"
  double flops_per_s;  // dense (no structured sparsity)
  double memory_bytes;  // the device's memory as its datasheet gives it (GB = 1e9 bytes)
  const char* note;    // what the figure is
};

// The table, in the order `lrkv flops-project --help` lists it.
const std::vector<DevicePeak>& DevicePeaks();

// A positive number ("989e12") or a device name from DevicePeaks(), case-insensitive, with '_' or
// ' ' for '-'; "h100", "h200", "a100" mean their bf16 dense tensor-core figure (H100: SXM).
// Unknown names fail with NotFound listing the known ones.
absl::StatusOr<double> LookupDevicePeak(const std::string& name_or_number);
// The same names for the device's memory in bytes (`lrkv memory --peak=h100`).
absl::StatusOr<double> LookupDeviceMemory(const std::string& name);

}  // namespace lrkv
