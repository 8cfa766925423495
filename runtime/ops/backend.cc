#include "runtime/ops/backend.h"

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv {
namespace {
// A table with every entry null.
Backend Empty(const char* name) {
  Backend b;
  b.name = name;
  return b;
}
}  // namespace

const Backend& BackendOf(Device device) {
  switch (device) {
    case Device::kCpu:
    case Device::kEmulated:  // host memory behind a device's rules: the CPU kernels serve it
      return cpu::Table();
    case Device::kCuda: {
#ifdef LRKV_HAVE_CUDA
      return cuda::Table();
#else
      static const Backend none = Empty("cuda");
      return none;
#endif
    }
  }
  static const Backend unknown = Empty("unknown-device");
  return unknown;
}

}  // namespace lrkv
