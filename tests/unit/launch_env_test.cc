// The launch check on fake environments: which launcher variables count, and which mismatches are
// refused (a world split into worlds of one) or only warned about (local rank, node count).
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "launch/cli/launch_env.h"
#include "runtime/cpu_target.h"

namespace lrkv {
namespace {

using Env = std::map<std::string, std::string>;

LauncherView Read(const Env& env) {
  return ReadLauncher([&](const char* name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

MpiPlacement World(int rank, int size, int local_rank = 0, int nodes = 1) {
  MpiPlacement p;
  p.rank = rank, p.world_size = size, p.local_rank = local_rank, p.num_nodes = nodes;
  for (int r = 0; r < size; ++r) p.node_of_rank.push_back(r * nodes / size);
  return p;
}

std::string Check(const MpiPlacement& mpi, const Env& env, std::vector<std::string>* warnings = nullptr) {
  std::vector<std::string> ignored;
  return std::string(CheckLaunch(mpi, Read(env), warnings ? warnings : &ignored).message());
}

TEST(LaunchEnv, NoLauncherIsOneProcess) {
  EXPECT_EQ(Read({}).world_size, -1);
  EXPECT_EQ(Check(World(0, 1), {}), "");
}

TEST(LaunchEnv, SrunWithoutPmixIsRefusedNamingBothNumbers) {
  const Env srun = {{"SLURM_JOB_ID", "7"}, {"SLURM_STEP_ID", "0"}, {"SLURM_NTASKS", "2"},
                    {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_PROCID", "1"}, {"SLURM_LOCALID", "0"}};
  const std::string m = Check(World(0, 1), srun);
  EXPECT_NE(m.find("MPI world has 1 rank but srun started 2 (SLURM_STEP_NUM_TASKS=2)"), std::string::npos) << m;
  EXPECT_NE(m.find("srun --mpi=pmix"), std::string::npos) << m;
}

TEST(LaunchEnv, SrunWorldThatMatchesPasses) {
  const Env srun = {{"SLURM_STEP_ID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "3"},
                    {"SLURM_LOCALID", "1"}, {"SLURM_STEP_NUM_NODES", "2"}};
  EXPECT_EQ(Read(srun).launcher, "srun");
  EXPECT_EQ(Check(World(3, 4, 1, 2), srun), "");
}

TEST(LaunchEnv, MpirunOfAnotherMpiIsRefused) {
  const Env mpirun = {{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "2"}};
  const std::string m = Check(World(0, 1), mpirun);
  EXPECT_NE(m.find("MPI world has 1 rank but mpirun started 4 (OMPI_COMM_WORLD_SIZE=4)"), std::string::npos) << m;
  EXPECT_NE(m.find("mpirun --version"), std::string::npos) << m;
}

// mpirun inside an allocation starts its daemons with srun, so the ranks inherit the daemons' step
// variables (2 tasks, one per node) while the world has 4 ranks: Open MPI's variables win.
TEST(LaunchEnv, MpirunInsideAllocationIgnoresTheDaemonsStep) {
  const Env env = {{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                   {"SLURM_JOB_ID", "9"}, {"SLURM_STEP_ID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "1"}};
  EXPECT_EQ(Read(env).launcher, "mpirun");
  EXPECT_EQ(Check(World(3, 4, 1, 2), env), "");
}

TEST(LaunchEnv, AloneInABatchScriptOfSeveralTasksIsRefused) {
  const Env batch = {{"SLURM_JOB_ID", "9"}, {"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "0"}, {"SLURM_JOB_NUM_NODES", "2"}};
  const std::string m = Check(World(0, 1), batch);
  EXPECT_NE(m.find("MPI world has 1 rank but the Slurm allocation has 4 tasks (SLURM_NTASKS=4)"), std::string::npos)
      << m;
  EXPECT_NE(m.find("not by srun or mpirun"), std::string::npos) << m;
  EXPECT_EQ(Check(World(0, 1), {{"SLURM_JOB_ID", "9"}, {"SLURM_NTASKS", "1"}}), "");
}

TEST(LaunchEnv, RankDisagreementIsRefused) {
  const std::string m = Check(World(1, 2), {{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "0"}});
  EXPECT_NE(m.find("MPI rank 1 but mpirun started it as rank 0 (OMPI_COMM_WORLD_RANK=0)"), std::string::npos) << m;
}

TEST(LaunchEnv, PmiLauncherCounts) {
  const std::string m = Check(World(0, 1), {{"PMI_SIZE", "3"}, {"PMI_RANK", "2"}});
  EXPECT_NE(m.find("started 3 (PMI_SIZE=3)"), std::string::npos) << m;
}

TEST(LaunchEnv, LocalRankAndNodeCountDisagreementsOnlyWarn) {
  std::vector<std::string> warnings;
  const Env srun = {{"SLURM_STEP_ID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "1"},
                    {"SLURM_NNODES", "2"}};
  EXPECT_EQ(Check(World(0, 2, 0, 1), srun, &warnings), "");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("local rank 0"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("MPI sees 1 node, srun placed the ranks on 2"), std::string::npos) << warnings[1];
}

TEST(LaunchEnv, DescribeListsTheRanksOfEachNode) {
  MpiPlacement p = World(0, 5, 0, 2);
  p.node_of_rank = {0, 0, 1, 1, 0};
  p.node_names = {"a", "b"};
  EXPECT_EQ(DescribeLaunch(p, Read({{"SLURM_STEP_ID", "0"}, {"SLURM_NTASKS", "5"}})),
            "launch: 5 ranks on 2 nodes (2-3 per node), started by srun\n"
            "  node 0 a: ranks 0-1,4\n"
            "  node 1 b: ranks 2-3\n");
}

// The start-up CPU check (runtime/cpu_target.h): this machine runs its own build; a CPU without
// one of the build's features is refused naming it, the build's target and the fix.
TEST(CpuTarget, ThisMachineRunsItsBuild) { EXPECT_TRUE(CheckCpuRunsThisBuild().ok()); }

TEST(CpuTarget, MissingFeaturesAreNamed) {
  const std::vector<std::string> built = BuildCpuFeatures();
  if (built.empty()) GTEST_SKIP() << "built for no CPU features this check knows (not x86-64)";
  EXPECT_TRUE(CheckCpuRunsThisBuild([](std::string_view) { return true; }).ok());
  const std::string last = built.back();
  const absl::Status st = CheckCpuRunsThisBuild([&](std::string_view f) { return f != last; });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(st.message());
  EXPECT_NE(message.find("lacks " + last + ":"), std::string::npos) << message;
  EXPECT_NE(message.find("compiled for -march="), std::string::npos) << message;
  EXPECT_NE(message.find("-DLRKV_MARCH="), std::string::npos) << message;
  const absl::Status none = CheckCpuRunsThisBuild([](std::string_view) { return false; });
  ASSERT_FALSE(none.ok());
  for (const std::string& f : built) EXPECT_NE(std::string(none.message()).find(f), std::string::npos) << f;
}

}  // namespace
}  // namespace lrkv
