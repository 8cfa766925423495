// Checkpoints of a training run (parallel/sharded_checkpoint.h does the storage): every rank's
// blocks of the parameters and of the AdamW moments, and the TrainState (launch/train/train_state.proto).
// Who stores what: the master weights and the moments from data-parallel replica 0, or from every
// DP rank (its ZeRO-1 shard, as flat ranges of the parameters) with ZeRO-1 (the masters only where
// they are sharded: under mixed precision); of a parameter several ranks of a replica hold, only
// the primary copy (Decoder::IsPrimaryCopy). So every element is stored once and a checkpoint
// saved at one layout loads into any other.
//   names: "param/NAME", "adam_m/NAME", "adam_v/NAME"
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "launch/train/train_state.pb.h"
#include "model/decoder.h"
#include "optim/adamw.h"
#include "parallel/mesh.h"
#include "parallel/sharded_checkpoint.h"

namespace lrkv {

// The blocks this rank saves from and loads into, sharing storage with the parameters and the
// optimizer state.
absl::StatusOr<std::vector<TensorBlock>> TrainingBlocks(Decoder& model, const AdamW& optimizer, ProcessMesh& mesh,
                                                        bool zero1);

// Where a run stands; what a checkpoint restores besides the tensors.
struct Progress {
  int64_t step = 0;  // steps completed
  int64_t tokens = 0;
  int64_t flops_cumulative = 0;
  double last_loss = 0;
  std::string metrics_record;      // this step's metrics.jsonl record (TrainState.metrics_record)
  uint32_t tokenizer_fingerprint = 0;
  int64_t loaded_bytes = 0;  // set by Resume: what this rank read,
  std::string checkpoint;    // and from where (empty: nothing to resume),
  std::string note;          // and why not the one `latest` names, when it was not
};

// Fails (before training) when a run that does not resume would write into a checkpoint directory
// that holds another run's checkpoints (unless train.overwrite_checkpoints). Rank 0 only, after it
// has taken the directory's lock (which also shows the directory is writable).
absl::Status CheckCheckpointDirectory(const TrainConfig& train);

// With train.overwrite_checkpoints on a run that does not resume: removes the checkpoints `dir`
// holds and says so. Rank 0 only, after every rank has agreed to start.
absl::Status RemoveOldCheckpoints(const TrainConfig& train);

// Loads the latest checkpoint of config.train().checkpoint_dir into the parameters and the
// optimizer (at this launch's layout) and returns its progress; progress at step 0 when the
// directory holds no checkpoint yet. Refuses a checkpoint at or beyond train.steps (nothing to
// train) and one trained on another tokenizer's data (`tokenizer_fingerprint` of this run's
// shards). Collective; every failure is agreed on by all ranks. With sharded masters only the
// values of this rank's shard are refreshed from them: the caller gathers the others'.
absl::StatusOr<Progress> Resume(const RunConfig& config, uint32_t tokenizer_fingerprint, Decoder& model,
                                AdamW& optimizer, ProcessMesh& mesh);

// Saves a checkpoint of step `progress.step`. Collective. Returns this rank's bytes written.
absl::StatusOr<int64_t> SaveTrainingCheckpoint(const RunConfig& config, const Progress& progress, Decoder& model,
                                               const AdamW& optimizer, ProcessMesh& mesh);

// "step_00000120".
std::string CheckpointName(int64_t step);

// For inference (lrkv generate, lrkv eval, lrkv export): `dir` is a checkpoint (DIR/manifest.pb) or
// a checkpoint directory, whose latest checkpoint is meant. Its path, manifest and training state.
struct SavedCheckpoint {
  std::string path;
  CheckpointManifest manifest;
  TrainState state;
  RunConfig config;  // the run's, as saved
};
absl::StatusOr<SavedCheckpoint> OpenCheckpoint(const std::string& dir);
// Collective over `world`: loads the checkpoint's parameters (only) into `model`, at whatever layout
// `model` has. Returns this rank's bytes read.
absl::StatusOr<int64_t> LoadParameters(Communicator& world, const SavedCheckpoint& checkpoint, Decoder& model);

// The checkpoint's TrainState; fails when its model differs from `config`'s (naming the field) or
// when the data stream would not continue (another seed or global batch).
absl::StatusOr<TrainState> CompatibleState(const CheckpointManifest& manifest, const std::string& path,
                                           const RunConfig& config);
// ... and fails when it was trained on another tokenizer's data or has nothing left to train.
absl::Status ContinuesRun(const TrainState& state, const std::string& path, const RunConfig& config,
                          uint32_t tokenizer_fingerprint);

}  // namespace lrkv
