#include "launch/cli/one_process.h"

#include <mpi.h>

#include "absl/strings/str_cat.h"

namespace lrkv {

absl::Status RunInOneProcess(const std::string& command, const std::function<absl::Status(MpiCommunicator&)>& body) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  }
  absl::Status status;
  {
    MpiCommunicator world(MPI_COMM_WORLD, "world");
    status = world.size() == 1 ? body(world)
                               : absl::InvalidArgumentError(absl::StrCat(
                                     "lrkv ", command, " runs in one process; it was started as one of ", world.size(),
                                     " ranks (run it without mpirun)"));
  }
  if (!initialized) MPI_Finalize();
  return status;
}

}  // namespace lrkv
