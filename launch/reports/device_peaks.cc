#include "launch/reports/device_peaks.h"

#include <cctype>
#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lrkv {

// Dense peaks from NVIDIA's datasheets. The datasheets print tensor-core figures with 2:4 structured
// sparsity ("*"); MFU is conventionally taken against the dense figure, which is half of it.
//   - NVIDIA H100 Tensor Core GPU datasheet (H100 SXM / H100 PCIe): FP32 67 / 51 TFLOPS,
//     TF32 989* / 756*, BF16 1,979* / 1,513*.
//   - NVIDIA H200 Tensor Core GPU datasheet (H200 SXM): the same compute as H100 SXM, FP32 67,
//     TF32 989*, BF16 1,979* (only the memory differs).
//   - NVIDIA A100 Tensor Core GPU datasheet (SXM and PCIe, 40 and 80 GB): FP32 19.5,
//     TF32 156 (312*), BF16 312 (624*).
// Memory: H100 SXM and PCIe 80 GB, H200 SXM 141 GB, A100 80 GB (its 40 GB part: give --gpu_memory).
const std::vector<DevicePeak>& DevicePeaks() {
  static const std::vector<DevicePeak> kPeaks = {
      {"h100-sxm-bf16", 989e12, 80e9, "H100 SXM, BF16 tensor core, dense"},
      {"h100-sxm-tf32", 494.5e12, 80e9, "H100 SXM, TF32 tensor core, dense"},
      {"h100-sxm-fp32", 67e12, 80e9, "H100 SXM, FP32 (no tensor core)"},
      {"h100-pcie-bf16", 756e12, 80e9, "H100 PCIe, BF16 tensor core, dense"},
      {"h100-pcie-tf32", 378e12, 80e9, "H100 PCIe, TF32 tensor core, dense"},
      {"h100-pcie-fp32", 51e12, 80e9, "H100 PCIe, FP32 (no tensor core)"},
      {"h200-sxm-bf16", 989e12, 141e9, "H200 SXM, BF16 tensor core, dense (same compute as H100 SXM)"},
      {"h200-sxm-tf32", 494.5e12, 141e9, "H200 SXM, TF32 tensor core, dense"},
      {"h200-sxm-fp32", 67e12, 141e9, "H200 SXM, FP32 (no tensor core)"},
      {"a100-bf16", 312e12, 80e9, "A100 (SXM or PCIe), BF16 tensor core, dense"},
      {"a100-tf32", 156e12, 80e9, "A100 (SXM or PCIe), TF32 tensor core, dense"},
      {"a100-fp32", 19.5e12, 80e9, "A100 (SXM or PCIe), FP32 (no tensor core)"},
  };
  return kPeaks;
}

namespace {

// Short names mean the bf16 figure, the precision large runs train in; a bare "h100" is the SXM part.
const std::pair<const char*, const char*> kAliases[] = {
    {"h100", "h100-sxm-bf16"},      {"h100-sxm", "h100-sxm-bf16"}, {"h100-pcie", "h100-pcie-bf16"},
    {"h200", "h200-sxm-bf16"},      {"h200-sxm", "h200-sxm-bf16"}, {"h200-bf16", "h200-sxm-bf16"},
    {"h100-bf16", "h100-sxm-bf16"}, {"a100", "a100-bf16"},
};

std::string Normalize(const std::string& name) {
  std::string out;
  for (char c : name) {
    out.push_back(c == '_' || c == ' ' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

// The table's entry for `name` (aliases resolved), or NotFound listing the names.
absl::StatusOr<const DevicePeak*> FindDevice(const std::string& name_in, const char* what) {
  std::string name = Normalize(name_in);
  for (const auto& [alias, target] : kAliases) {
    if (name == alias) name = target;
  }
  std::string known;
  for (const DevicePeak& p : DevicePeaks()) {
    if (name == p.name) return &p;
    absl::StrAppend(&known, known.empty() ? "" : ", ", p.name);
  }
  return absl::NotFoundError(absl::StrCat("unknown device '", name_in, "' for the ", what, ": one of ", known,
                                          " (or h100, h100-pcie, h200, a100 for bf16)"));
}

}  // namespace

absl::StatusOr<double> LookupDevicePeak(const std::string& name_or_number) {
  double number = 0;
  if (absl::SimpleAtod(name_or_number, &number)) {
    if (!std::isfinite(number) || number <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("peak FLOP/s must be a positive number, got '", name_or_number, "'"));
    }
    return number;
  }
  absl::StatusOr<const DevicePeak*> d = FindDevice(name_or_number, "peak FLOP/s (or give a number, e.g. 989e12)");
  if (!d.ok()) return d.status();
  return (*d)->flops_per_s;
}

absl::StatusOr<double> LookupDeviceMemory(const std::string& name) {
  absl::StatusOr<const DevicePeak*> d = FindDevice(name, "memory (or give --gpu_memory=80GiB)");
  if (!d.ok()) return d.status();
  return (*d)->memory_bytes;
}

}  // namespace lrkv
