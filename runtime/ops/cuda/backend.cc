// The CUDA backend's table: every kernel of ops/backend.h's list, the functions of ops/cuda/.
// Compiled only with LRKV_HAVE_CUDA; plain C++, the kernels' sources are the .cu files.
#include "runtime/ops/backend.h"
#include "runtime/ops/cuda/kernels.h"

namespace lrkv::cuda {
LRKV_DEFINE_BACKEND_TABLE("cuda")
}  // namespace lrkv::cuda
