// For the commands that use the (collective) checkpoint code outside training, `lrkv export` and
// `lrkv import`: MPI as a world of one process, set up and torn down around the work.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "parallel/mpi_communicator.h"

namespace lrkv {

// MPI_Init, `body` with the world communicator, MPI_Finalize. Refuses a world of several ranks
// (`command` run under mpirun -np N > 1) before calling `body`.
absl::Status RunInOneProcess(const std::string& command, const std::function<absl::Status(MpiCommunicator&)>& body);

}  // namespace lrkv
