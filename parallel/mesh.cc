#include "parallel/mesh.h"

#include "absl/strings/str_cat.h"
#include "runtime/status.h"

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

absl::StatusOr<std::unique_ptr<ProcessMesh>> ProcessMesh::Create(MpiCommunicator& world, const Layout& layout) {
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
  LRKV_TRY_ASSIGN(m->tp_, world.Split(tp_color, m->tp_index_, "tp"));
  LRKV_TRY_ASSIGN(m->pp_, world.Split(pp_color, m->pp_index_, "pp"));
  LRKV_TRY_ASSIGN(m->dp_, world.Split(dp_color, m->dp_index_, "dp"));
  const bool end = layout.pp > 1 && (m->first_stage() || m->last_stage());
  LRKV_TRY_ASSIGN(m->pp_ends_, world.Split(end ? pp_color : MPI_UNDEFINED, m->pp_index_, "pp_ends"));
  return m;
}

}  // namespace lrkv
