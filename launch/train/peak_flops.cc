#include "launch/train/peak_flops.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "runtime/flop_counter.h"
#include "runtime/ops/gemm.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<double> MeasureGemmFlops(double seconds) {
  constexpr int64_t n = 1024;
  LRKV_TRY_ASSIGN(Tensor a, Tensor::Zeros({n, n}, DType::kF32));
  LRKV_TRY_ASSIGN(Tensor c, Tensor::Zeros({n, n}, DType::kF32));
  std::fill_n(a.data<float>(), n * n, 0.5f);
  const GemmArgs g = GemmArgs::Dense(n, n, n);
  const NotCounted not_training_work;  // a run's counts are untouched
  LRKV_TRY(Gemm(a, a, c, g, FlopCategory::kMlp));  // warm-up: threads, caches
  // Throughput over the whole window, not the best call: ranks that share cores then each see
  // their share, and the sum over ranks is the machine's rate.
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  int64_t calls = 0;
  while (elapsed < seconds) {
    LRKV_TRY(Gemm(a, a, c, g, FlopCategory::kMlp));
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return 2.0 * n * n * n * calls / elapsed;
}

absl::StatusOr<double> MeasureJobPeakFlops(Communicator& world, double seconds) {
  LRKV_TRY(world.Barrier());
  LRKV_TRY_ASSIGN(const double mine, MeasureGemmFlops(seconds));
  LRKV_TRY_ASSIGN(Tensor t, Tensor::Empty({1}, DType::kF64));
  t.data<double>()[0] = mine;
  LRKV_TRY(world.AllReduce(t));
  return t.data<double>()[0];
}

}  // namespace lrkv
