// Decoding under tensor parallelism, run under mpirun (-np 2, and -np 4): for every PyTorch
// reference case (tests/testing/model_testing.h), as written and with its QK-norm flipped, the world is one TP group; each rank builds its
// blocks of the model and, alone, the whole model from the same seed (initialisation is keyed by
// global element index, so the two are the same model). Prefill + one token at a time over the TP
// group must give the whole model's full-forward logits at every position, and each rank's cache
// must hold exactly the per-rank KV values of `lrkv flops --layout` (AnalyzeLayout). Each rank packs
// its blocks of the weights (model/parameter.h set_pack_weights), which the prefill's rows use.
#include <mpi.h>

#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/flop_model.h"
#include "parallel/mpi_communicator.h"
#include "tests/testing/model_testing.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

MpiCommunicator& World() {
  static MpiCommunicator world(MPI_COMM_WORLD, "world");
  return world;
}

class TensorParallelDecoding : public ::testing::TestWithParam<testing::DecodingCase> {};

TEST_P(TensorParallelDecoding, EqualsTheWholeModelsForward) {
  absl::StatusOr<RunConfig> c = testing::LoadDecodingCase(GetParam());
  ASSERT_TRUE(c.ok()) << c.status();
  ModelConfig m = c->model();
  const int tp = World().size();
  m.set_vocab_size(40);  // split by vocabulary over 2 and 4 ranks
  if (m.n_heads() % tp != 0 || m.d_ff() % tp != 0) GTEST_SKIP() << "the case does not split " << tp << " ways";
  ASSERT_TRUE(ValidateModelConfig(m).ok()) << ValidateModelConfig(m);
  auto whole = Decoder::Create(m, {}, DType::kF64).value();
  ASSERT_TRUE(whole->params().Initialize(9).ok());
  ModelPlacement place;
  place.tp_rank = {World().rank(), tp, /*decoding=*/true};
  place.tp = &World();
  auto mine = Decoder::Create(m, place, DType::kF64).value();
  mine->params().set_pack_weights(true);  // the prefill's 6 rows through the packed blocks of each rank
  ASSERT_TRUE(mine->params().Initialize(9).ok());

  const int64_t len = 6, prompt = 3;
  const Tensor tokens = testing::Tokens({2, len}, m.vocab_size(), 31);
  ASSERT_TRUE(whole->Forward(tokens, tokens).ok());
  const Tensor reference = whole->logits().To(Device::kCpu, DType::kF64).value();  // (2 len, V)
  absl::StatusOr<KvCache> cache = mine->NewCache(2, len);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->ValuesPerToken(), m.n_layers() * AnalyzeLayout(m, tp, 1)[0].kv_cache_values_per_token_per_layer);
  const int64_t v = m.vocab_size();
  for (int64_t pos = 0; pos < len;) {
    const int64_t n = pos == 0 ? prompt : 1;  // both prefilled together, then a token at a time
    Tensor next = testing::Tokens({2, n}, 2, 0);
    for (int64_t s = 0; s < 2; ++s)
      std::copy_n(tokens.data<int32_t>() + s * len + pos, n, next.data<int32_t>() + s * n);
    absl::StatusOr<Tensor> logits = mine->Extend(*cache, {0, 1}, next);
    ASSERT_TRUE(logits.ok()) << logits.status();
    for (int64_t s = 0; s < 2; ++s)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t j = 0; j < v; ++j) {
          const double want = testing::At(reference, (s * len + pos + t) * v + j);
          ASSERT_NEAR(testing::At(*logits, (s * n + t) * v + j), want, 1e-10 * std::max(1.0, std::abs(want)))
              << "rank " << World().rank() << " sequence " << s << " position " << pos + t << " logit " << j;
        }
    pos += n;
  }
}

INSTANTIATE_TEST_SUITE_P(ReferenceCases, TensorParallelDecoding, ::testing::ValuesIn(testing::DecodingCases()),
                         testing::DecodingCaseName);

}  // namespace
}  // namespace lrkv
