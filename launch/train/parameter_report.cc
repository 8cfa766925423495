#include "launch/train/parameter_report.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "parallel/agreement.h"
#include "runtime/npy.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

std::string TpLayoutName(const Parameter& p) {
  if (p.block.dim >= 0) {
    return absl::StrFormat("split dim %d [%d, %d) of %s", p.block.dim, p.block.offset,
                           p.block.offset + p.block.shape[p.block.dim], ShapeString(p.spec.shape));
  }
  return p.spec.tp == TpSplit::kReplicatedPartialGrad ? "replicated, grad summed over tp" : "replicated";
}

// The ranks of data-parallel replica 0 hold every parameter block: world ranks [0, pp x tp).
bool InReplicaZero(ProcessMesh& mesh) { return mesh.dp_index() == 0; }
int ReplicaZeroRanks(ProcessMesh& mesh) { return mesh.layout().pp * mesh.layout().tp; }

// Every parameter's whole master (block.shape): the masters themselves, or sharded ones gathered
// from the DP ranks' shards (each rank's copied into zeros, then the same all-gather as the values'
// after a step, in fp32). Collective over DP when sharded.
absl::StatusOr<std::vector<Tensor>> WholeMasters(const ParameterSet& params, const Zero1Partition* zero1,
                                                 Communicator& dp) {
  std::vector<Tensor> whole;
  if (!params.masters_sharded()) {
    for (const auto& p : params.all()) whole.push_back(p->master);
    return whole;
  }
  LRKV_REQUIRE(zero1 != nullptr, "sharded masters without their ZeRO-1 partition");
  std::vector<Tensor*> gathered;
  for (const auto& p : params.all()) {
    LRKV_TRY_ASSIGN(Tensor t, Tensor::Zeros(p->block.shape, params.master_dtype(), params.device()));
    if (p->master_begin < p->master_end) {
      LRKV_TRY_ASSIGN(const Tensor flat, t.View({t.numel()}));
      LRKV_TRY_ASSIGN(Tensor range, flat.Slice(p->master_begin, p->master_end));
      LRKV_TRY(range.CopyFrom(p->master));
    }
    whole.push_back(std::move(t));
  }
  for (Tensor& t : whole) gathered.push_back(&t);
  LRKV_TRY(zero1->AllGatherParameters(dp, gathered));
  return whole;
}

}  // namespace

absl::Status PrintLayout(const ParameterSet& params, ProcessMesh& mesh) {
  MpiCommunicator& world = mesh.world();
  std::string text = absl::StrFormat("rank %d (dp %d, pp %d, tp %d): %.3fM parameters\n", world.rank(),
                                     mesh.dp_index(), mesh.pp_index(), mesh.tp_index(), params.NumElements() / 1e6);
  for (const auto& p : params.all()) {
    absl::StrAppendFormat(&text, "  %-32s %-16s %s\n", p->spec.name, ShapeString(p->value.shape()), TpLayoutName(*p));
  }
  if (world.rank() != 0) return SendString(world, text, 0);
  std::fwrite(text.data(), 1, text.size(), stdout);
  for (int r = 1; r < world.size(); ++r) {
    LRKV_TRY_ASSIGN(const std::string other, RecvString(world, r));
    std::fwrite(other.data(), 1, other.size(), stdout);
  }
  std::fflush(stdout);
  return absl::OkStatus();
}

absl::Status SaveGlobalParameters(const std::string& dir, Decoder& model, ProcessMesh& mesh,
                                  const Zero1Partition* zero1) {
  const ParameterSet& params = model.params();
  LRKV_TRY_ASSIGN(const std::vector<Tensor> masters, WholeMasters(params, zero1, mesh.dp()));
  if (!InReplicaZero(mesh)) return absl::OkStatus();
  MpiCommunicator& world = mesh.world();
  // Each rank sends one line per block it contributes ("name dim offset global_dims..."), then the
  // blocks: its primary copies only.
  std::vector<const Tensor*> mine;
  std::string header;
  for (size_t i = 0; i < params.all().size(); ++i) {
    const Parameter* p = params.all()[i].get();
    if (!model.IsPrimaryCopy(*p)) continue;
    mine.push_back(&masters[i]);
    absl::StrAppend(&header, p->spec.name, " ", p->block.dim, " ", p->block.offset);
    for (int64_t e : p->spec.shape) absl::StrAppend(&header, " ", e);
    absl::StrAppend(&header, "\n");
  }
  if (world.rank() != 0) {
    LRKV_TRY(SendString(world, header, 0));
    for (const Tensor* t : mine) LRKV_TRY(world.Send(*t, 0));
    return absl::OkStatus();
  }
  std::map<std::string, Tensor> global;
  for (int r = 0; r < ReplicaZeroRanks(mesh); ++r) {
    std::string lines = header;
    if (r != 0) {
      LRKV_TRY_ASSIGN(lines, RecvString(world, r));
    }
    const std::vector<std::string> entries = absl::StrSplit(lines, '\n', absl::SkipEmpty());
    int next = 0;
    for (const std::string& line : entries) {
      const std::vector<std::string> f = absl::StrSplit(line, ' ');
      int dim = 0;
      int64_t offset = 0;
      Shape shape;
      LRKV_REQUIRE(f.size() >= 3 && absl::SimpleAtoi(f[1], &dim) && absl::SimpleAtoi(f[2], &offset),
                   "parameter dump: malformed header line from rank ", r, ": ", line);
      for (size_t i = 3; i < f.size(); ++i) {
        int64_t e = 0;
        LRKV_REQUIRE(absl::SimpleAtoi(f[i], &e), "parameter dump: malformed shape from rank ", r, ": ", line);
        shape.push_back(e);
      }
      LocalBlock block{shape, dim, offset};
      if (dim >= 0) block.shape[dim] = shape[dim] / mesh.layout().tp;
      Tensor local;
      if (r == 0) {
        LRKV_TRY_ASSIGN(local, mine[next++]->To(Device::kCpu, params.master_dtype()));
      } else {
        LRKV_TRY_ASSIGN(local, Tensor::Empty(block.shape, params.master_dtype()));
        LRKV_TRY(world.Recv(local, r));
      }
      Tensor& g = global[f[0]];
      if (!g.defined()) {
        LRKV_TRY_ASSIGN(g, Tensor::Empty(shape, params.master_dtype()));
      }
      const int64_t size = DTypeSize(params.master_dtype());
      for (int64_t i = 0; i < local.numel(); ++i) {
        std::memcpy(static_cast<char*>(g.raw()) + GlobalIndex(shape, block, i) * size,
                    static_cast<const char*>(local.raw()) + i * size, size);
      }
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (const auto& [name, t] : global) LRKV_TRY(WriteNpy(dir + "/" + name + ".npy", t));
  return absl::OkStatus();
}

}  // namespace lrkv
