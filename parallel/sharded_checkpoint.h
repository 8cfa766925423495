// Sharded checkpoints of any set of tensors split over ranks; knows nothing of what the tensors
// are. A checkpoint is a directory:
//   DIR/step_00000120/manifest.pb      CheckpointManifest (checkpoint_manifest.proto), by rank 0
//   DIR/step_00000120/shard_00003.bin  the pieces rank 3 stores, back to back
//   DIR/latest                         the name of the newest complete checkpoint
// Each rank stores its pieces of the tensors it owns (a block along one dimension, or a flat range
// of a block: a ZeRO shard); replicas are stored once. The manifest lists every piece with its
// place in the global tensor, file, byte range and CRC32C, and the caller's training state.
//
// Saving is atomic: everything is written into DIR/.tmp-NAME, fsynced, renamed to DIR/NAME, and
// only then does `latest` change (written aside, fsynced, renamed). A rank killed at any moment
// leaves the previous checkpoint complete and `latest` pointing at it.
//
// Loading fills any other set of blocks (another layout) by reading only the pieces that intersect
// them, and verifies everything it reads (version, shapes, dtypes, file sizes, CRCs, coverage)
// before any block is written; all ranks agree on the outcome (parallel/agreement.h).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "parallel/checkpoint_manifest.pb.h"
#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace lrkv {

inline constexpr int kManifestVersion = 1;

// One rank's piece of a global tensor, to save from or to load into: elements
// [flat_begin, flat_end) (row-major) of the block that spans [offset, offset + block_shape[dim])
// along dimension `dim` of the global tensor (dim -1: the block is the whole tensor).
struct TensorBlock {
  std::string name;
  Shape shape;        // global
  Shape block_shape;  // equals shape when dim < 0
  int dim = -1;
  int64_t offset = 0;
  int64_t flat_begin = 0, flat_end = 0;
  Tensor data;        // flat_end - flat_begin elements, on any device (written through a host copy)
  bool store = true;  // saving: this rank writes the piece (false for a replica stored elsewhere)
};

struct CheckpointOptions {
  int keep_last = 3;  // complete checkpoints kept in DIR (older ones deleted after a save); 0 keeps all
};

// Collective over `world`: every rank passes its blocks. Returns the bytes this rank wrote.
absl::StatusOr<int64_t> SaveCheckpoint(Communicator& world, const std::string& dir, const std::string& name,
                                       const std::vector<TensorBlock>& blocks, const std::string& state,
                                       const std::string& state_type, const CheckpointOptions& options);

// The names of the complete checkpoints in `dir` (those with a manifest), oldest first.
std::vector<std::string> ListCheckpoints(const std::string& dir);

// DIR/NAME of the checkpoint to continue from: the one `latest` names. When `latest` is missing,
// empty, not a regular file, unreadable garbage or names no checkpoint directory (a disk that filled
// while it was written leaves such states), the newest complete checkpoint whose manifest verifies
// instead, and `*note` (if given) says why. NotFound only when `dir` holds no checkpoint at all; a
// `latest` that points outside `dir` ("../other/step_3", "/abs") is refused.
absl::StatusOr<std::string> LatestCheckpoint(const std::string& dir, std::string* note = nullptr);
// The manifest of checkpoint directory `path`, version checked.
absl::StatusOr<CheckpointManifest> ReadManifest(const std::string& path);

// Collective over `world`: fills every block's data from checkpoint `path`. Returns the bytes this
// rank read.
absl::StatusOr<int64_t> LoadCheckpoint(Communicator& world, const std::string& path,
                                       const CheckpointManifest& manifest, std::vector<TensorBlock>& blocks);

// The dtype of a manifest record (stored as DTypeName: "f32", ...); DataLoss naming the tensor when
// unknown.
absl::StatusOr<DType> RecordDType(const TensorRecord& record);

}  // namespace lrkv
