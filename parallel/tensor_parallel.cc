#include "parallel/tensor_parallel.h"

namespace lrkv {

absl::Status AllReduceOverTp(Communicator* tp, Tensor& t) {
  if (tp == nullptr || tp->size() == 1) return absl::OkStatus();
  return tp->AllReduce(t);
}

}  // namespace lrkv
