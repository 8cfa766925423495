#include "launch/train/memory_check.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "launch/train/training_device.h"
#include "model/config.h"
#include "model/memory_model.h"
#include "runtime/status.h"
#include "runtime/test_hooks.h"

namespace lrkv {
namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;

// A number from a file of one value ("max" or absent: -1).
int64_t ReadCgroupValue(const char* path) {
  std::ifstream f(path);
  std::string value;
  if (!(f >> value) || value == "max") return -1;
  return std::stoll(value);
}

// What the job would need per rank at the largest stage with another recompute mode.
double PeakWith(RunConfig config, Recompute mode) {
  config.mutable_train()->set_recompute(mode);
  return LargestRank(PredictRankMemory(config)).peak();
}

// On a GPU each rank has the device to itself: its stage's prediction against what the GPU has free.
absl::Status CheckGpuMemoryFits(const RunConfig& config, int stage) {
  const double need = PredictRankMemory(config, Device::kCuda).at(stage).peak();
  LRKV_TRY_ASSIGN(const int64_t free_bytes, FreeDeviceMemoryBytes(Device::kCuda));
  if (config.train().ignore_memory_check() || need <= double(free_bytes)) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "this job does not fit on its GPUs: pipeline stage %d needs %.1f GiB per GPU, %.1f GiB free on this one; "
      "`lrkv memory --gpu_memory=SIZE --search` shows layouts that fit, --train.ignore_memory_check=true starts "
      "anyway",
      stage, need / kGiB, double(free_bytes) / kGiB));
}

}  // namespace

int64_t AvailableMemoryBytes() {
  if (const char* bytes = TestHook("LRKV_TEST_MEMORY_AVAILABLE")) return std::stoll(bytes);
  int64_t available = -1;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    int64_t kib = 0;
    meminfo >> kib;
    if (key == "MemAvailable:") available = kib * 1024;
    meminfo.ignore(64, '\n');
  }
  const int64_t limit = ReadCgroupValue("/sys/fs/cgroup/memory.max");  // cgroup v2
  const int64_t used = ReadCgroupValue("/sys/fs/cgroup/memory.current");
  if (limit >= 0 && used >= 0) available = std::min(available, limit - used);
  return available;
}

absl::Status CheckMemoryFits(const RunConfig& config, int stage, MPI_Comm world) {
  if (TrainingDevice(config.train().device()) == Device::kCuda) return CheckGpuMemoryFits(config, stage);
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_ranks = 1;
  MPI_Comm_size(node, &local_ranks);
  const std::vector<RankMemory> stages = PredictRankMemory(config);
  double mine = stages.at(stage).peak(), need = 0;
  MPI_Allreduce(&mine, &need, 1, MPI_DOUBLE, MPI_SUM, node);
  MPI_Comm_free(&node);
  const double available = double(AvailableMemoryBytes());
  if (config.train().ignore_memory_check() || available < 0 || need <= available) return absl::OkStatus();

  const RankMemory& largest = LargestRank(stages);
  std::string advice;
  for (Recompute mode : {ATTENTION, BLOCK}) {
    if (mode <= config.train().recompute()) continue;
    const double peak = PeakWith(config, mode);
    if (peak * local_ranks <= available) {
      advice = absl::StrFormat("try --train.recompute=%s (predicted %.1f GiB per rank)", Recompute_Name(mode),
                               peak / kGiB);
      break;
    }
  }
  if (advice.empty()) {
    advice = "make the micro-batch smaller (--micro_batches), the model smaller (model.n_layers, model.d_model), or "
             "spread it over more nodes (--tp, --pp, --zero1)";
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "this job does not fit in memory: needs %.1f GiB per rank (%.1f GiB of parameters, gradients and AdamW state, "
      "%.1f GiB of activations for %d micro-batch(es) in flight, %.1f GiB working), %d rank(s) on this node need "
      "%.1f GiB, %.1f GiB available: %s; `lrkv memory` shows the prediction, --train.ignore_memory_check=true "
      "starts anyway",
      largest.peak() / kGiB, largest.state() / kGiB, largest.activations / kGiB, largest.micro_batches_in_flight,
      largest.working / kGiB, local_ranks, need / kGiB, available / kGiB, advice));
}

}  // namespace lrkv
