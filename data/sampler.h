// Training and evaluation samplers over a token stream.
//
// Training windows are a pure function of (seed, global sample index): sample i of the run is the
// window starting at
//     start(i) = HashCombine(seed, i) % (N - T)      (N tokens, sequence length T)
// with inputs tokens[start, start + T) and targets tokens[start + 1, start + T + 1).
// Step s with global batch G consumes global sample indices s*G .. s*G + G - 1. A data-parallel
// rank r of D takes the contiguous slice RankSlice(G, r, D) of those G samples. Hence the sequence
// of batches is identical for any number of ranks, any micro-batching and any resume point: a run
// resumed at step s needs nothing but s.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv::data {

using TokenBuffer = std::shared_ptr<const std::vector<int32_t>>;

// Contiguous part of a global batch of `global_batch` samples owned by `rank` of `world` ranks:
// samples [*first, *first + *count). Slices differ in size by at most one.
void RankSlice(int64_t global_batch, int rank, int world, int64_t* first, int64_t* count);

class TrainSampler {
 public:
  // Fails (InvalidArgument) unless seq_len >= 1 and the stream has more than seq_len tokens.
  static absl::StatusOr<TrainSampler> Create(TokenBuffer tokens, int64_t seq_len, uint64_t seed);

  // Writes seq_len inputs and seq_len targets (inputs shifted by one) of sample `global_index`.
  void Sample(int64_t global_index, int32_t* tokens, int32_t* targets) const;
  // Fills `count` rows (each seq_len long, row-major) with samples first .. first + count - 1 of
  // step `step`, i.e. global indices step * global_batch + first + j.
  void SampleBatch(int64_t step, int64_t global_batch, int64_t first, int64_t count,
                   int32_t* tokens, int32_t* targets) const;
  // Start offset of sample `global_index` in the stream (exposed for tests and debugging).
  int64_t WindowStart(int64_t global_index) const;

  int64_t seq_len() const { return seq_len_; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_->size()); }

 private:
  TrainSampler(TokenBuffer tokens, int64_t seq_len, uint64_t seed)
      : tokens_(std::move(tokens)), seq_len_(seq_len), seed_(seed) {}
  TokenBuffer tokens_;
  int64_t seq_len_;
  uint64_t seed_;
};

// Fixed, contiguous, non-overlapping windows over the validation stream: window i covers inputs
// tokens[i*T, i*T + T) and targets tokens[i*T + 1, i*T + T + 1). The trailing tokens that do not
// fill a window are not evaluated, so every evaluation scores exactly the same tokens.
class EvalSampler {
 public:
  // Fails (InvalidArgument) unless seq_len >= 1 and the stream holds at least one window.
  static absl::StatusOr<EvalSampler> Create(TokenBuffer tokens, int64_t seq_len);

  int64_t num_windows() const { return (static_cast<int64_t>(tokens_->size()) - 1) / seq_len_; }
  void Window(int64_t i, int32_t* tokens, int32_t* targets) const;
  int64_t seq_len() const { return seq_len_; }

 private:
  EvalSampler(TokenBuffer tokens, int64_t seq_len)
      : tokens_(std::move(tokens)), seq_len_(seq_len) {}
  TokenBuffer tokens_;
  int64_t seq_len_;
};

}  // namespace lrkv::data
