#include "data/sampler.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/hash.h"
#include "runtime/status.h"

namespace lrkv::data {
namespace {

// Index arguments are programming contracts of the training loop, not data errors; a violation
// would silently train on the wrong tokens, so it stops the process with a message.
#define LRKV_SAMPLER_CHECK(cond)                                                                 \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "%s:%d: sampler contract violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)

void CopyWindow(const std::vector<int32_t>& src, int64_t start, int64_t len, int32_t* tokens,
                int32_t* targets) {
  std::memcpy(tokens, src.data() + start, len * sizeof(int32_t));
  std::memcpy(targets, src.data() + start + 1, len * sizeof(int32_t));
}

}  // namespace

void RankSlice(int64_t global_batch, int rank, int world, int64_t* first, int64_t* count) {
  LRKV_SAMPLER_CHECK(world >= 1 && rank >= 0 && rank < world && global_batch >= 0);
  *first = global_batch * rank / world;
  *count = global_batch * (rank + 1) / world - *first;
}

absl::StatusOr<TrainSampler> TrainSampler::Create(TokenBuffer tokens, int64_t seq_len,
                                                  uint64_t seed) {
  LRKV_REQUIRE(tokens != nullptr, "TrainSampler: null token buffer");
  LRKV_REQUIRE(seq_len >= 1, "TrainSampler: seq_len must be >= 1, got ", seq_len);
  LRKV_REQUIRE(static_cast<int64_t>(tokens->size()) > seq_len, "TrainSampler: the train split has ",
               tokens->size(), " tokens, it needs more than seq_len = ", seq_len);
  return TrainSampler(std::move(tokens), seq_len, seed);
}

int64_t TrainSampler::WindowStart(int64_t global_index) const {
  LRKV_SAMPLER_CHECK(global_index >= 0);
  const uint64_t range = static_cast<uint64_t>(num_tokens() - seq_len_);
  return static_cast<int64_t>(HashCombine(seed_, static_cast<uint64_t>(global_index)) % range);
}

void TrainSampler::Sample(int64_t global_index, int32_t* tokens, int32_t* targets) const {
  CopyWindow(*tokens_, WindowStart(global_index), seq_len_, tokens, targets);
}

void TrainSampler::SampleBatch(int64_t step, int64_t global_batch, int64_t first, int64_t count,
                               int32_t* tokens, int32_t* targets) const {
  LRKV_SAMPLER_CHECK(step >= 0 && global_batch >= 1 && first >= 0 && count >= 0 &&
                     first + count <= global_batch);
  for (int64_t j = 0; j < count; ++j) {
    Sample(step * global_batch + first + j, tokens + j * seq_len_, targets + j * seq_len_);
  }
}

absl::StatusOr<EvalSampler> EvalSampler::Create(TokenBuffer tokens, int64_t seq_len) {
  LRKV_REQUIRE(tokens != nullptr, "EvalSampler: null token buffer");
  LRKV_REQUIRE(seq_len >= 1, "EvalSampler: seq_len must be >= 1, got ", seq_len);
  LRKV_REQUIRE(static_cast<int64_t>(tokens->size()) > seq_len,
               "EvalSampler: the validation split has ", tokens->size(),
               " tokens, it needs more than seq_len = ", seq_len, " for one window");
  return EvalSampler(std::move(tokens), seq_len);
}

void EvalSampler::Window(int64_t i, int32_t* tokens, int32_t* targets) const {
  LRKV_SAMPLER_CHECK(i >= 0 && i < num_windows());
  CopyWindow(*tokens_, i * seq_len_, seq_len_, tokens, targets);
}

}  // namespace lrkv::data
