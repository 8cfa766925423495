// The CPU backend's table: every kernel of ops/backend.h's list, the functions of ops/cpu/.
#include "runtime/ops/backend.h"
#include "runtime/ops/cpu/kernels.h"

namespace lrkv::cpu {
LRKV_DEFINE_BACKEND_TABLE("cpu")
}  // namespace lrkv::cpu
