// Where this process sits in the job, as MPI sees it, checked against what the launcher (mpirun,
// srun, a Slurm allocation) says it started. The check exists for one failure above all: a binary
// whose MPI cannot talk to its launcher (srun without a PMIx plugin, an mpirun of another MPI, the
// binary run directly in a batch script) comes up as N separate worlds of one rank each, and every
// process would train alone, writing the same files. That launch is refused at start-up instead.
#pragma once

#include <mpi.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lrkv {

// What MPI says: this rank, the world, and which ranks share a node (MPI_COMM_TYPE_SHARED).
struct MpiPlacement {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_size = 1;         // within this node
  int num_nodes = 1;
  std::vector<int> node_of_rank;              // node index (0..num_nodes-1, by lowest rank) per rank
  std::vector<std::string> node_names;        // per node; filled on rank 0 only
};

// What the launcher says, from its environment variables; -1 where it says nothing.
struct LauncherView {
  std::string launcher = "a single process";  // "mpirun", "srun", ... for messages
  std::string size_var, rank_var;             // the variables the numbers came from
  int world_size = -1, rank = -1, local_rank = -1, nodes = -1;
  bool in_allocation_outside_step = false;    // a Slurm batch script or salloc shell, not a task
};

using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// Reads the launcher's variables: Open MPI's OMPI_COMM_WORLD_* first (under mpirun inside a Slurm
// allocation the SLURM_* task variables describe mpirun's daemons, not the ranks), then an srun step
// (SLURM_STEP_ID, SLURM_STEP_NUM_TASKS / SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID, node counts), then
// PMI_SIZE / PMI_RANK (MPICH and Intel MPI launchers), then a Slurm allocation outside any step.
LauncherView ReadLauncher(const EnvLookup& env);

// An error when MPI's world is not the one the launcher started: sizes or ranks differ, or the binary
// runs alone inside an allocation of several tasks. Disagreements that do not split the world (local
// rank, node count) go to `warnings`.
absl::Status CheckLaunch(const MpiPlacement& mpi, const LauncherView& launcher, std::vector<std::string>* warnings);

// "2 ranks on 2 nodes (1 per node), started by srun" and one line per node listing its ranks.
std::string DescribeLaunch(const MpiPlacement& mpi, const LauncherView& launcher);

// Collective over `world`: local rank and node groups from MPI_Comm_split_type, names from
// MPI_Get_processor_name (plus Slurm's node name where it differs, as on simulated nodes).
absl::StatusOr<MpiPlacement> DiscoverPlacement(MPI_Comm world);

// At the start of `lrkv COMMAND` under MPI (train, generate, eval), right after MPI_Init on every
// rank: discovers the placement, refuses a mismatched launch, prints the job's shape once (rank 0;
// on stdout for train, on stderr for the commands whose stdout is their result) and records
// LocalRank().
absl::Status SetUpLaunch(MPI_Comm world, const std::string& command = "train");

// This rank's index among the ranks on its node (0 before SetUpLaunch); picks the GPU.
int LocalRank();

}  // namespace lrkv
