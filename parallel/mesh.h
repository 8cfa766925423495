// The process mesh: world = DP x PP x TP ranks, TP innermost, so that the TP ranks of a group are
// neighbours (on a cluster, the same node):
//   world rank = (dp_index * pp + pp_index) * tp + tp_index
// Each rank holds communicators for its TP group (same dp, pp), its PP group (same dp, tp; ordered
// by stage) and its DP group (same pp, tp); the ranks of the first and the last stage also share a
// "pipeline ends" group (same dp, tp) for parameters both ends hold (tied embeddings).
// The groups carry the tensors of the device the model lives on: NCCL for CUDA jobs of several
// ranks (MPI bootstraps it), MPI otherwise (a host device's tensors directly, the emulated device's through host copies).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "parallel/mpi_communicator.h"

namespace lrkv {

struct Layout {
  int dp = 1, pp = 1, tp = 1;
  int world_size() const { return dp * pp * tp; }
  int StageOf(int world_rank) const { return (world_rank / tp) % pp; }  // the rank order above
  std::string ToString() const;  // "dp2 x pp1 x tp2"
};

// Checks the layout against the world before any work; the message names the numbers.
absl::Status ValidateLayout(const Layout& layout, int world_size);

// Splits `units` (e.g. layers) into `parts` contiguous ranges: the first units % parts parts get one
// extra unit. Fails when parts > units, so that no part is empty.
absl::Status CheckSplit(int units, int parts, const char* what);
void SplitRange(int units, int parts, int index, int* begin, int* end);

class ProcessMesh {
 public:
  // `world` must outlive the mesh.
  // `timeout_s`: the device collectives' limit (NcclCommunicator); MPI's groups have none.
  static absl::StatusOr<std::unique_ptr<ProcessMesh>> Create(MpiCommunicator& world, const Layout& layout,
                                                              Device device = Device::kCpu, double timeout_s = 600);

  const Layout& layout() const { return layout_; }
  int dp_index() const { return dp_index_; }
  int pp_index() const { return pp_index_; }
  int tp_index() const { return tp_index_; }
  MpiCommunicator& world() { return *world_; }
  Communicator& tp() { return *tp_; }
  Communicator& pp() { return *pp_; }
  Communicator& dp() { return *dp_; }
  // The first and last stage of this rank's pipeline; null on the other stages and when pp = 1.
  Communicator* pp_ends() { return pp_ends_.get(); }
  bool first_stage() const { return pp_index_ == 0; }
  bool last_stage() const { return pp_index_ == layout_.pp - 1; }

 private:
  Layout layout_;
  int dp_index_ = 0, pp_index_ = 0, tp_index_ = 0;
  MpiCommunicator* world_ = nullptr;
  std::unique_ptr<Communicator> device_world_;  // NCCL's world, parent of the groups (CUDA only)
  std::unique_ptr<Communicator> tp_, pp_, dp_, pp_ends_;
};

}  // namespace lrkv
