// Small exchanges among the ranks of a group that are not tensor traffic. Agreement on the outcome of checks every rank runs (inputs, files, checkpoints):
// every rank learns whether any failed, and every rank gets the same message, that of the first
// failing rank. Then all ranks stop together at the same point, each naming the problem, and the
// job can end in order (MPI_Finalize) instead of racing an MPI_Abort.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace lrkv {

// OK when every rank passed OK; otherwise the first failing rank's status (code and message),
// marked StoppedOnEveryRank, on every rank.
absl::Status AgreeOnStatus(Communicator& group, const absl::Status& local);
bool StoppedOnEveryRank(const absl::Status& status);

// values[i] = the sum over the group of values[i]: a few scalars (loss sums, FLOPs, byte counts).
absl::Status SumOverGroup(Communicator& group, std::vector<double>& values);
// values[i] = the largest over the group of values[i] (peak memory of the ranks).
absl::Status MaxOverGroup(Communicator& group, std::vector<double>& values);

// Strings between two ranks (as a length, then the bytes).
absl::Status SendString(Communicator& c, const std::string& s, int peer);
absl::StatusOr<std::string> RecvString(Communicator& c, int peer);

}  // namespace lrkv
