#include "parallel/mesh.h"

#include "absl/strings/str_cat.h"
#include "runtime/status.h"
#ifdef LRKV_HAVE_CUDA
#include "parallel/nccl_communicator.h"
#endif

namespace lrkv {

std::string Layout::ToString() const { return absl::StrCat("dp", dp, " x pp", pp, " x tp", tp); }

absl::Status ValidateLayout(const Layout& l, int world_size) {
  LRKV_REQUIRE(l.dp >= 1 && l.pp >= 1 && l.tp >= 1, "layout ", l.ToString(), ": every dimension must be >= 1");
  LRKV_REQUIRE(l.world_size() == world_size, "layout ", l.ToString(), " needs ", l.world_size(),
               " ranks but the job has ", world_size, " (world size must equal dp x pp x tp)");
  return absl::OkStatus();
}

absl::Status CheckSplit(int units, int parts, const char* what) {
  LRKV_REQUIRE(parts <= units, "cannot split ", units, " ", what, " into ", parts,
               " pipeline stages: every stage needs at least one");
  return absl::OkStatus();
}

void SplitRange(int units, int parts, int index, int* begin, int* end) {
  const int base = units / parts, extra = units % parts;
  *begin = index * base + std::min(index, extra);
  *end = *begin + base + (index < extra ? 1 : 0);
}

namespace {

// The groups split off `world` by color (a negative color: not in the group).
template <typename Comm>
absl::StatusOr<std::unique_ptr<Communicator>> SplitOff(Comm& world, int color, int key, const char* name) {
  LRKV_TRY_ASSIGN(auto group, world.Split(color, key, name));
  return std::unique_ptr<Communicator>(std::move(group));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProcessMesh>> ProcessMesh::Create(MpiCommunicator& world, const Layout& layout,
                                                                Device device, double timeout_s) {
  LRKV_TRY(ValidateLayout(layout, world.size()));
  auto m = std::make_unique<ProcessMesh>();
  m->layout_ = layout;
  m->world_ = &world;
  const int r = world.rank();
  m->tp_index_ = r % layout.tp;
  m->pp_index_ = layout.StageOf(r);
  m->dp_index_ = r / (layout.tp * layout.pp);
  const int tp_color = m->dp_index_ * layout.pp + m->pp_index_;
  const int pp_color = m->dp_index_ * layout.tp + m->tp_index_;
  const int dp_color = m->pp_index_ * layout.tp + m->tp_index_;
  const bool end = layout.pp > 1 && (m->first_stage() || m->last_stage());
  const auto split = [&](auto& parent, int undefined) -> absl::Status {
    LRKV_TRY_ASSIGN(m->tp_, SplitOff(parent, tp_color, m->tp_index_, "tp"));
    LRKV_TRY_ASSIGN(m->pp_, SplitOff(parent, pp_color, m->pp_index_, "pp"));
    LRKV_TRY_ASSIGN(m->dp_, SplitOff(parent, dp_color, m->dp_index_, "dp"));
    LRKV_TRY_ASSIGN(m->pp_ends_, SplitOff(parent, end ? pp_color : undefined, m->pp_index_, "pp_ends"));
    return absl::OkStatus();
  };
  // One process has no collectives to run (every group has one rank): NCCL is not set up for it.
  if (device == Device::kCuda && world.size() > 1) {
#ifdef LRKV_HAVE_CUDA
    LRKV_TRY_ASSIGN(std::unique_ptr<NcclCommunicator> nccl, NcclCommunicator::Create(world.comm(), "world", timeout_s));
    LRKV_TRY(split(*nccl, -1));
    m->device_world_ = std::move(nccl);
#else
    (void)timeout_s;
    return absl::FailedPreconditionError("a CUDA mesh needs NCCL, and this build has no CUDA backend");
#endif
  } else {
    LRKV_TRY(split(world, MPI_UNDEFINED));
  }
  return m;
}

}  // namespace lrkv
