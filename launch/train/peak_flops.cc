#include "launch/train/peak_flops.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "parallel/agreement.h"
#include "runtime/flop_counter.h"
#include "runtime/ops/gemm.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<double> MeasureGemmFlops(double seconds, Device device, DType dtype) {
  const int64_t n = device == Device::kCuda ? 8192 : 1024;
  LRKV_TRY_ASSIGN(Tensor host, Tensor::Empty({n, n}, DType::kF32));
  std::fill_n(host.data<float>(), n * n, 0.5f);
  LRKV_TRY_ASSIGN(const Tensor a, host.To(device, dtype));
  LRKV_TRY_ASSIGN(Tensor c, Tensor::Zeros({n, n}, AccumDType(dtype), device));
  LRKV_TRY_ASSIGN(const Tensor c_first, c.Slice(0, 1));
  // Reading an element back waits for the device's queue, so the clock sees the GEMMs done.
  const auto finished = [&]() { return c_first.To(Device::kCpu, c.dtype()).status(); };
  const GemmArgs g = GemmArgs::Dense(n, n, n);
  const NotCounted not_training_work;  // a run's counts are untouched
  LRKV_TRY(Gemm(a, a, c, g, FlopCategory::kMlp));  // warm-up: threads, caches, GEMM plans
  LRKV_TRY(finished());
  // Throughput over the whole window, not the best call: ranks that share cores then each see
  // their share, and the sum over ranks is the machine's rate.
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  int64_t calls = 0;
  while (elapsed < seconds) {
    LRKV_TRY(Gemm(a, a, c, g, FlopCategory::kMlp));
    ++calls;
    if (device == Device::kCuda && calls % 8 != 0) continue;  // let the queue fill between looks
    LRKV_TRY(finished());
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return 2.0 * n * n * n * calls / elapsed;
}

absl::StatusOr<double> MeasureJobPeakFlops(Communicator& world, double seconds, Device device, DType dtype) {
  LRKV_TRY(world.Barrier());
  LRKV_TRY_ASSIGN(const double mine, MeasureGemmFlops(seconds, device, dtype));
  std::vector<double> sum = {mine};
  LRKV_TRY(SumOverGroup(world, sum));
  return sum[0];
}

}  // namespace lrkv
