// The training loop as a library, in one process without mpirun (MPI as a world of one): its step
// (losses of a resumed run equal the uninterrupted run's), resume, stop and refusal logic, and the
// metrics file (control characters round-trip, a half-written line is dropped).
#include <mpi.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "data/token_shard.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "launch/train/metrics_writer.h"
#include "launch/train/stop_signals.h"
#include "launch/train/trainer.h"
#include "model/config.h"
#include "nlohmann/json.hpp"
#include "runtime/ops/gemm.h"

namespace lrkv {
namespace {

namespace fs = std::filesystem;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lrkv_trainer_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    std::mt19937 rng(7);
    for (const char* split : {"train", "val"}) {
      std::vector<int32_t> tokens(4000);
      for (int32_t& t : tokens) t = int32_t(rng() % 64);
      ASSERT_TRUE(data::WriteTokenShard((dir_ / "data" / (std::string(split) + ".bin")).string(), tokens, 64, 77).ok());
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  RunConfig Config(int64_t steps, const std::string& out, const std::string& checkpoints = "", bool resume = false) {
    RunConfig c;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
        "model { vocab_size: 64 d_model: 16 n_layers: 1 n_heads: 2 attention: LRKV lrkv_rank: 2 d_ff: 32 "
        "activation: GELU norm: RMSNORM seq_len: 8 } "
        "train { global_batch: 2 lr: 3e-3 warmup_steps: 100 eval_batches: 1 peak_flops: 1e9 log_every: 100 }",
        &c));
    TrainConfig& t = *c.mutable_train();
    t.set_steps(steps), t.set_data_dir((dir_ / "data").string()), t.set_out_dir((dir_ / out).string());
    if (!checkpoints.empty()) t.set_checkpoint_dir((dir_ / checkpoints).string());
    t.set_resume(resume);
    FillDefaults(c);
    return c;
  }

  std::vector<double> Losses(const std::string& out) {
    std::vector<double> losses;
    std::ifstream in(dir_ / out / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) losses.push_back(nlohmann::json::parse(line)["loss"].get<double>());
    return losses;
  }

  fs::path dir_;
  MpiCommunicator world_{MPI_COMM_WORLD, "world"};
};

TEST_F(TrainerTest, ResumedRunEqualsUninterruptedBitForBit) {
  ASSERT_TRUE(Train(Config(6, "whole"), world_).ok());
  ASSERT_TRUE(Train(Config(3, "split", "ck"), world_).ok());
  absl::StatusOr<TrainSummary> resumed = Train(Config(6, "split", "ck", /*resume=*/true), world_);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->steps, 6);
  const std::vector<double> whole = Losses("whole"), split = Losses("split");
  ASSERT_EQ(whole.size(), 6u);
  EXPECT_EQ(split, whole);  // exact: the step's loss and the parameters do not depend on the restart
}

TEST_F(TrainerTest, StopSignalSavesAtTheNextStepAndIsConsumed) {
  InstallStopSignalHandlers();
  std::raise(SIGTERM);  // arrives before the first step: honoured at its end
  absl::StatusOr<TrainSummary> stopped = Train(Config(50, "run", "ck"), world_);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->steps, 1);
  EXPECT_TRUE(fs::exists(dir_ / "ck" / "step_00000001" / "manifest.pb"));
  EXPECT_EQ(StopSignal(), 0);  // consumed: the next run in this process is not stopped by it
  absl::StatusOr<TrainSummary> resumed = Train(Config(3, "run", "ck", /*resume=*/true), world_);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->steps, 3);
  EXPECT_EQ(Losses("run").size(), 3u);
}

// Stop signals arriving while float GEMMs run (oneDNN's JIT kernels move the stack pointer into the
// heap: stop_signals.cc) leave the heap and the results intact. Thread-directed, at the GEMM's thread.
TEST(StopSignals, ArrivingDuringGemmsCorruptNothing) {
  InstallStopSignalHandlers();
  const int64_t m = 256, n = 768, k = 768;
  auto filled = [](int64_t numel, float scale) {
    Tensor t = Tensor::Empty({numel}, DType::kF32).value();
    for (int64_t i = 0; i < numel; ++i) t.data<float>()[i] = scale * float((i * 7919) % 1999) / 1999.0f;
    return t;
  };
  const Tensor a = filled(m * k, 1.0f), b = filled(k * n, 0.5f);
  Tensor first = Tensor::Empty({m * n}, DType::kF32).value(), c = Tensor::Empty({m * n}, DType::kF32).value();
  ASSERT_TRUE(Gemm(a, b, first, GemmArgs::Dense(m, n, k), FlopCategory::kMlp).ok());
  std::atomic<bool> done{false};
  std::atomic<int64_t> sent{0};
  const pthread_t target = pthread_self();
  std::thread sender([&] {
    while (!done.load()) {
      pthread_kill(target, SIGUSR1);
      sent.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  int64_t mismatches = 0;
  for (int rep = 0; rep < 300; ++rep) {
    std::vector<std::vector<float>> churn(16, std::vector<float>(1000 + rep));  // heap traffic between calls
    ASSERT_TRUE(Gemm(a, b, c, GemmArgs::Dense(m, n, k), FlopCategory::kMlp).ok());
    mismatches += std::memcmp(c.data<float>(), first.data<float>(), c.nbytes()) != 0;
  }
  done = true;
  sender.join();
  EXPECT_GT(sent.load(), 100);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(StopSignal(), SIGUSR1);
  ClearStopSignal();
}

TEST_F(TrainerTest, RefusesAnotherRunsCheckpointsAndNothingLeftToTrain) {
  ASSERT_TRUE(Train(Config(2, "first", "ck"), world_).ok());
  absl::StatusOr<TrainSummary> again = Train(Config(2, "second", "ck"), world_);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already holds another run's 1 checkpoint(s): step_00000002"),
            std::string::npos)
      << again.status();
  absl::StatusOr<TrainSummary> done = Train(Config(2, "first", "ck", /*resume=*/true), world_);
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.status().message().find("is at step 2 and train.steps is 2: nothing left to train"), std::string::npos)
      << done.status();
  RunConfig overwrite = Config(3, "third", "ck");
  overwrite.mutable_train()->set_overwrite_checkpoints(true);
  absl::StatusOr<TrainSummary> replaced = Train(overwrite, world_);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_FALSE(fs::exists(dir_ / "ck" / "step_00000002"));
  EXPECT_TRUE(fs::exists(dir_ / "ck" / "step_00000003"));
}

TEST_F(TrainerTest, RefusesDataOfAnotherTokenizer) {
  ASSERT_TRUE(Train(Config(2, "first", "ck"), world_).ok());
  std::vector<int32_t> tokens(4000, 5);
  for (const char* split : {"train", "val"}) {  // same vocabulary size, another tokenizer's fingerprint
    ASSERT_TRUE(data::WriteTokenShard((dir_ / "data" / (std::string(split) + ".bin")).string(), tokens, 64, 78).ok());
  }
  absl::StatusOr<TrainSummary> resumed = Train(Config(4, "first", "ck", /*resume=*/true), world_);
  ASSERT_FALSE(resumed.ok());
  EXPECT_NE(resumed.status().message().find("was trained on data of another tokenizer (fingerprint 0000004d"),
            std::string::npos)
      << resumed.status();
}

TEST(MetricsWriter, ControlCharactersRoundTripAndHalfLinesAreDropped) {
  const std::string path = (fs::temp_directory_path() / ("lrkv_metrics_" + std::to_string(::getpid()) + ".jsonl")).string();
  const std::string odd = std::string("tab\there \"quoted\" back\\slash newline\n bell\x07 nul") + '\0' + "end";
  {
    absl::StatusOr<MetricsWriter> w = MetricsWriter::Open(path);
    ASSERT_TRUE(w.ok());
    for (int64_t step = 1; step <= 3; ++step) {
      JsonRecord r;
      r.Add("step", step).Add("loss", 1.0 / 3.0).Add("note", odd).Add("nan", std::nan(""));
      ASSERT_TRUE(w->Write(r).ok());
    }
  }
  { std::ofstream(path, std::ios::app) << "{\"step\": 4, \"loss\": 0.1"; }  // a write cut short
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  const nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["note"].get<std::string>(), odd);
  EXPECT_EQ(j["loss"].get<double>(), 1.0 / 3.0);  // shortest round-trip form, exact
  EXPECT_TRUE(j["nan"].is_null());
  absl::StatusOr<MetricsWriter> resumed = MetricsWriter::Open(path, /*keep_through_step=*/10);
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(resumed->last_step(), 3);  // the half line is gone
  fs::remove(path);
}

}  // namespace
}  // namespace lrkv

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int status = RUN_ALL_TESTS();
  MPI_Finalize();
  return status;
}
