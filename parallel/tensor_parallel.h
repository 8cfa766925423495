// Tensor parallelism (Megatron-LM style), independent of any model. A column-parallel linear
// (weight split by output columns) followed by a row-parallel one (split by input rows) needs two
// conjugate operators:
//   f, before the column-parallel input: identity forward, sum of the ranks' input gradients backward;
//   g, after the row-parallel output: sum of the ranks' partial outputs forward, identity backward.
// Each is one all-reduce over the TP group; AllReduceOverTp is that all-reduce, called where f's
// backward or g's forward happens. A null group (no tensor parallelism) does nothing.
#pragma once

#include "absl/status/status.h"
#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace lrkv {

absl::Status AllReduceOverTp(Communicator* tp, Tensor& t);

// Size of a possibly null TP group.
inline int TpSize(const Communicator* tp) { return tp ? tp->size() : 1; }

}  // namespace lrkv
