#include "launch/cli/launch_env.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

int g_local_rank = 0;

absl::Status Mpi(int error, const char* call) {
  if (error == MPI_SUCCESS) return absl::OkStatus();
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(error, text, &len);
  return absl::InternalError(absl::StrCat(call, " failed: ", std::string(text, len)));
}

std::optional<std::string> GetEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::string Plural(int n, const char* word) { return absl::StrCat(n, " ", word, n == 1 ? "" : "s"); }

// "0-3,8,10-11" for a sorted list of ranks.
std::string Ranges(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    absl::StrAppend(&out, out.empty() ? "" : ",", ranks[i]);
    if (j > i) absl::StrAppend(&out, "-", ranks[j]);
    i = j + 1;
  }
  return out;
}

// Why each process came up as a world of its own, and what to do, per launcher.
std::string WorldOfOneFix(const LauncherView& l) {
  if (l.in_allocation_outside_step) {
    return "lrkv train was started directly in the batch script (or salloc shell), not by srun or mpirun, "
           "so it would train alone on one rank. Likely fix: start it with `srun --mpi=pmix lrkv train ...` "
           "or `mpirun lrkv train ...` inside the allocation (or ask Slurm for --ntasks=1)";
  }
  if (l.launcher == "srun") {
    return "every task came up as an MPI world of its own: srun did not wire MPI up through PMIx. "
           "Likely fix: `srun --mpi=pmix ...` (`srun --mpi=list` shows the plugins; Slurm's pmix plugin "
           "needs the PMIx library lrkv's Open MPI uses, on Debian libpmix-dev), or run `mpirun` inside "
           "the allocation";
  }
  if (l.launcher == "mpirun") {
    return "every process came up as an MPI world of its own: lrkv is linked against another MPI than "
           "this mpirun. Likely fix: launch with the mpirun of the MPI lrkv was built with (compare "
           "`mpirun --version` with `ldd lrkv | grep -i mpi`) or rebuild lrkv against this one";
  }
  return "every process came up as an MPI world of its own: lrkv's MPI does not speak this launcher's "
         "protocol. Likely fix: launch with the mpirun of the MPI lrkv was built with";
}

}  // namespace

LauncherView ReadLauncher(const EnvLookup& env) {
  const auto number = [&](const char* name) {
    const std::optional<std::string> v = env(name);
    int x = -1;
    return v && absl::SimpleAtoi(*v, &x) ? x : -1;
  };
  // The first of `names` that is set, with its value.
  const auto first = [&](std::initializer_list<const char*> names, std::string* var) {
    for (const char* name : names) {
      if (const int x = number(name); x >= 0) {
        if (var != nullptr) *var = name;
        return x;
      }
    }
    return -1;
  };
  LauncherView v;
  if (number("OMPI_COMM_WORLD_SIZE") > 0) {
    v.launcher = "mpirun";
    v.world_size = first({"OMPI_COMM_WORLD_SIZE"}, &v.size_var);
    v.rank = first({"OMPI_COMM_WORLD_RANK"}, &v.rank_var);
    v.local_rank = number("OMPI_COMM_WORLD_LOCAL_RANK");
    return v;
  }
  const bool slurm_step = env("SLURM_STEP_ID").has_value() || env("SLURM_STEPID").has_value();
  if (slurm_step && first({"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"}, nullptr) > 0) {
    v.launcher = "srun";
    v.world_size = first({"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"}, &v.size_var);
    v.rank = first({"SLURM_PROCID"}, &v.rank_var);
    v.local_rank = number("SLURM_LOCALID");
    v.nodes = first({"SLURM_STEP_NUM_NODES", "SLURM_NNODES"}, nullptr);
    return v;
  }
  if (number("PMI_SIZE") > 0) {
    v.launcher = "the MPI launcher";
    v.world_size = first({"PMI_SIZE"}, &v.size_var);
    v.rank = first({"PMI_RANK"}, &v.rank_var);
    v.local_rank = number("MPI_LOCALRANKID");
    return v;
  }
  if (env("SLURM_JOB_ID").has_value() && number("SLURM_NTASKS") > 0) {
    v.launcher = "the Slurm allocation";
    v.in_allocation_outside_step = true;
    v.world_size = first({"SLURM_NTASKS"}, &v.size_var);
    v.nodes = first({"SLURM_JOB_NUM_NODES", "SLURM_NNODES"}, nullptr);
  }
  return v;
}

absl::Status CheckLaunch(const MpiPlacement& mpi, const LauncherView& l, std::vector<std::string>* warnings) {
  if (l.world_size < 0) return absl::OkStatus();  // nothing launched us but ourselves
  const std::string says = absl::StrCat(l.size_var, "=", l.world_size);
  if (l.in_allocation_outside_step) {
    // One process in an allocation of several tasks is a forgotten srun; more is some launcher of its own.
    LRKV_REQUIRE(!(mpi.world_size == 1 && l.world_size > 1), "launch check: MPI world has 1 rank but ",
                 l.launcher, " has ", Plural(l.world_size, "task"), " (", says, "): ", WorldOfOneFix(l));
    return absl::OkStatus();
  }
  if (mpi.world_size != l.world_size) {
    const std::string why = mpi.world_size == 1
                                ? WorldOfOneFix(l)
                                : "two launchers are nested (e.g. mpirun inside srun) or MPI joined processes "
                                  "the launcher did not start. Likely fix: start lrkv with exactly one launcher";
    return absl::InvalidArgumentError(absl::StrCat("launch check: MPI world has ", Plural(mpi.world_size, "rank"),
                                                   " but ", l.launcher, " started ", l.world_size, " (", says,
                                                   "): ", why));
  }
  LRKV_REQUIRE(l.rank < 0 || l.rank == mpi.rank, "launch check: this process is MPI rank ", mpi.rank, " but ",
               l.launcher, " started it as rank ", l.rank, " (", l.rank_var, "=", l.rank,
               "): two launchers disagree; start lrkv with exactly one launcher");
  if (l.local_rank >= 0 && l.local_rank != mpi.local_rank) {
    warnings->push_back(absl::StrCat("MPI puts rank ", mpi.rank, " at local rank ", mpi.local_rank,
                                     " on its node, ", l.launcher, " at ", l.local_rank,
                                     "; per-node choices (GPU) follow MPI"));
  }
  if (mpi.rank == 0 && l.nodes > 0 && l.nodes != mpi.num_nodes) {
    warnings->push_back(absl::StrCat("MPI sees ", Plural(mpi.num_nodes, "node"), ", ", l.launcher, " placed the ",
                                     "ranks on ", l.nodes, "; ranks per node are counted as MPI sees them"));
  }
  return absl::OkStatus();
}

std::string DescribeLaunch(const MpiPlacement& mpi, const LauncherView& l) {
  std::vector<std::vector<int>> ranks(mpi.num_nodes);
  for (int r = 0; r < mpi.world_size; ++r) ranks[mpi.node_of_rank[r]].push_back(r);
  size_t lo = ranks[0].size(), hi = lo;
  for (const auto& n : ranks) lo = std::min(lo, n.size()), hi = std::max(hi, n.size());
  std::string out = absl::StrCat("launch: ", Plural(mpi.world_size, "rank"), " on ", Plural(mpi.num_nodes, "node"),
                                 " (", lo, lo == hi ? "" : absl::StrCat("-", hi), " per node), started by ",
                                 l.launcher, "\n");
  constexpr int kMaxNodeLines = 32;  // a 1000-node job should not print 1000 lines
  for (int n = 0; n < mpi.num_nodes && n < kMaxNodeLines; ++n) {
    const std::string name = n < static_cast<int>(mpi.node_names.size()) ? mpi.node_names[n] : "?";
    absl::StrAppend(&out, "  node ", n, " ", name, ": ", ranks[n].size() == 1 ? "rank " : "ranks ",
                    Ranges(ranks[n]), "\n");
  }
  if (mpi.num_nodes > kMaxNodeLines) absl::StrAppend(&out, "  ... and ", mpi.num_nodes - kMaxNodeLines, " more\n");
  return out;
}

absl::StatusOr<MpiPlacement> DiscoverPlacement(MPI_Comm world) {
  MpiPlacement p;
  LRKV_TRY(Mpi(MPI_Comm_rank(world, &p.rank), "MPI_Comm_rank"));
  LRKV_TRY(Mpi(MPI_Comm_size(world, &p.world_size), "MPI_Comm_size"));
  // The ranks that share memory are the ranks of one node; ordered by world rank, so the node's
  // lowest rank is its local rank 0 and names the node group.
  MPI_Comm node;
  LRKV_TRY(Mpi(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, p.rank, MPI_INFO_NULL, &node),
               "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)"));
  int leader = p.rank;
  absl::Status s = Mpi(MPI_Comm_rank(node, &p.local_rank), "MPI_Comm_rank(node)");
  if (s.ok()) s = Mpi(MPI_Comm_size(node, &p.local_size), "MPI_Comm_size(node)");
  if (s.ok()) s = Mpi(MPI_Bcast(&leader, 1, MPI_INT, 0, node), "MPI_Bcast(node)");
  MPI_Comm_free(&node);
  LRKV_TRY(s);
  std::vector<int> leaders(p.world_size);
  LRKV_TRY(Mpi(MPI_Allgather(&leader, 1, MPI_INT, leaders.data(), 1, MPI_INT, world), "MPI_Allgather(nodes)"));
  std::map<int, int> node_index;  // leader rank -> node index, in rank order
  for (int l : leaders) node_index.emplace(l, 0);
  p.num_nodes = 0;
  for (auto& entry : node_index) entry.second = p.num_nodes++;
  p.node_of_rank.resize(p.world_size);
  for (int r = 0; r < p.world_size; ++r) p.node_of_rank[r] = node_index[leaders[r]];

  // Node names, gathered on rank 0. Simulated Slurm nodes share one host name, so Slurm's own name
  // for the node is added where it differs.
  constexpr int kNameLen = 256;
  char host[MPI_MAX_PROCESSOR_NAME] = {0};
  int host_len = 0;
  LRKV_TRY(Mpi(MPI_Get_processor_name(host, &host_len), "MPI_Get_processor_name"));
  std::string name(host, host_len);
  if (const char* slurm = std::getenv("SLURMD_NODENAME"); slurm != nullptr && name != slurm) {
    absl::StrAppend(&name, " (slurm ", slurm, ")");
  }
  char mine[kNameLen] = {0};
  std::strncpy(mine, name.c_str(), kNameLen - 1);
  std::vector<char> all(p.rank == 0 ? static_cast<size_t>(kNameLen) * p.world_size : 0);
  LRKV_TRY(Mpi(MPI_Gather(mine, kNameLen, MPI_CHAR, all.data(), kNameLen, MPI_CHAR, 0, world), "MPI_Gather(names)"));
  if (p.rank == 0) {
    p.node_names.resize(p.num_nodes);
    for (int r = 0; r < p.world_size; ++r) {
      if (leaders[r] == r) p.node_names[p.node_of_rank[r]] = std::string(&all[static_cast<size_t>(r) * kNameLen]);
    }
  }
  return p;
}

absl::Status SetUpLaunch(MPI_Comm world, const std::string& command) {
  LRKV_TRY_ASSIGN(const MpiPlacement mpi, DiscoverPlacement(world));
  const LauncherView launcher = ReadLauncher(GetEnv);
  std::vector<std::string> warnings;
  LRKV_TRY(CheckLaunch(mpi, launcher, &warnings));
  for (const std::string& w : warnings) {
    std::fprintf(stderr, "lrkv %s [rank %d]: warning: %s\n", command.c_str(), mpi.rank, w.c_str());
  }
  g_local_rank = mpi.local_rank;
  const bool training = command == "train";
  FILE* out = training ? stdout : stderr;
  if (mpi.rank == 0) {
    std::fputs(DescribeLaunch(mpi, launcher).c_str(), out);
    // Open MPI's mpirun kills the ranks about a second after it gets SIGTERM or SIGINT, before a
    // checkpoint can be written; launch/mpirun.sh turns those into SIGUSR1, which it forwards.
    if (training && launcher.launcher == "mpirun" && std::getenv("LRKV_MPIRUN_WRAPPER") == nullptr &&
        std::getenv("SLURM_JOB_ID") == nullptr) {
      std::fputs("  note: under a bare mpirun, SIGTERM or Ctrl-C kills the ranks before they can save; stop with "
                 "SIGUSR1 to mpirun, or launch through launch/mpirun.sh, which converts them\n",
                 stdout);
    }
    std::fflush(out);
  }
  return absl::OkStatus();
}

int LocalRank() { return g_local_rank; }

}  // namespace lrkv
