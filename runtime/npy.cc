#include "runtime/npy.h"

#include <cstdint>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status WriteNpy(const std::string& path, const Tensor& t) {
  const char* descr = t.dtype() == DType::kF32 ? "<f4" : t.dtype() == DType::kF64 ? "<f8" : "<i4";
  LRKV_REQUIRE(t.dtype() != DType::kBF16, "WriteNpy: bf16 has no NumPy dtype");
  std::string shape = absl::StrJoin(t.shape(), ", ");
  if (t.rank() == 1) shape += ",";
  std::string header = absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", shape, "), }");
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  const size_t total = ((10 + header.size() + 1 + 63) / 64) * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  LRKV_TRY_ASSIGN(Tensor host, t.To(Device::kCpu, t.dtype()));
  std::ofstream out(path, std::ios::binary);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&len), 2);
  out.write(header.data(), header.size());
  out.write(static_cast<const char*>(host.raw()), host.nbytes());
  if (!out) return absl::DataLossError(absl::StrCat("short write to ", path));
  return absl::OkStatus();
}

}  // namespace lrkv
