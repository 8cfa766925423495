// lrkv checkpoint inspect DIR: a checkpoint's manifest in readable form (DIR is a checkpoint, or a
// checkpoint directory whose `latest` is shown).
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"
#include "launch/cli/commands.h"
#include "launch/train/train_state.pb.h"
#include "model/config.pb.h"
#include "parallel/sharded_checkpoint.h"
#include "runtime/status.h"

namespace lrkv {

absl::Status RunCheckpointInspect(const std::string& dir) {
  std::string path = dir;
  if (!std::filesystem::exists(dir + "/manifest.pb")) {
    LRKV_TRY_ASSIGN(path, LatestCheckpoint(dir));
  }
  LRKV_TRY_ASSIGN(const CheckpointManifest m, ReadManifest(path));
  std::printf("checkpoint %s\n  manifest version %d, written by %d ranks, %d tensors\n", path.c_str(), m.version(),
              m.world_size(), m.tensors_size());
  TrainState state;
  RunConfig config;
  if (m.state_type() == TrainState::descriptor()->full_name() && state.ParseFromString(m.state()) &&
      google::protobuf::TextFormat::ParseFromString(state.config_text(), &config)) {
    std::printf("  step %lld, %lld tokens, %.4g training FLOPs, AdamW step %lld, last loss %.4f\n",
                static_cast<long long>(state.step()), static_cast<long long>(state.tokens()),
                double(state.flops_cumulative()), static_cast<long long>(state.optimizer_steps()), state.last_loss());
    std::printf("  saved at layout %s; data: seed %llu, global batch %lld (next batch: number %lld)\n",
                state.layout().c_str(), static_cast<unsigned long long>(config.train().seed()),
                static_cast<long long>(config.train().global_batch()), static_cast<long long>(state.step()));
    std::printf("  config:\n    %s\n", absl::StrJoin(absl::StrSplit(state.config_text(), '\n', absl::SkipEmpty()),
                                                     "\n    ").c_str());
  } else {
    std::printf("  state: %s (%zu bytes)\n", m.state_type().c_str(), m.state().size());
  }
  int64_t total = 0;
  std::printf("  %-36s %-5s %-18s %s\n", "tensor", "dtype", "shape", "pieces: rank [offset +extent] {flat range} file @byte +bytes crc32c");
  for (const TensorRecord& r : m.tensors()) {
    std::printf("  %-36s %-5s %-18s\n", r.name().c_str(), r.dtype().c_str(),
                absl::StrCat("(", absl::StrJoin(r.shape(), ", "), ")").c_str());
    for (const TensorPiece& p : r.pieces()) {
      total += p.byte_length();
      std::printf("      rank %d [%s +%s] {%lld, %lld} %s @%lld +%lld %08x\n", p.rank(),
                  absl::StrJoin(p.offset(), ",").c_str(), absl::StrJoin(p.extent(), ",").c_str(),
                  static_cast<long long>(p.flat_begin()), static_cast<long long>(p.flat_end()), p.file().c_str(),
                  static_cast<long long>(p.byte_offset()), static_cast<long long>(p.byte_length()), p.crc32c());
    }
  }
  std::printf("  %.3f MB in pieces\n", total / 1e6);
  return absl::OkStatus();
}

}  // namespace lrkv
