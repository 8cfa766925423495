// Parameters across the ranks of a parallel layout, gathered on world rank 0:
//  - PrintLayout: every rank's parameters with their local shapes and how each is laid out over
//    the tensor-parallel group (split along a dimension, or replicated), so a user can see where
//    LRKV's shared and residual projections live;
//  - SaveGlobalParameters: every parameter as one .npy file of its global shape, assembled from the
//    blocks of the ranks of data-parallel replica 0 (a debugging and testing dump, not a checkpoint);
//    sharded masters (ZeRO-1 under mixed precision) are first gathered over DP (`zero1`).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "model/decoder.h"
#include "model/parameter.h"
#include "parallel/data_parallel.h"
#include "parallel/mesh.h"

namespace lrkv {

absl::Status PrintLayout(const ParameterSet& params, ProcessMesh& mesh);
// Collective over every rank; `zero1` may be null when the masters are not sharded.
absl::Status SaveGlobalParameters(const std::string& dir, Decoder& model, ProcessMesh& mesh,
                                  const Zero1Partition* zero1);

}  // namespace lrkv
