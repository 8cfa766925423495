// Times the CUDA backend's cuBLASLt GEMM and its attention kernels (forward, backward) with CUDA
// events, in f32 and bf16. Prints one JSON object per line: op, dtype, shape, median ms over the
// timed repeats, and the FLOP rate implied by the launchers' own FLOP counts. Exits 77 (skipped)
// without a CUDA device. UNVERIFIED: written and compiled without a GPU; bench/gpu/verify.sh runs it
// on a GPU machine.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/cuda/device.h"
#include "runtime/flop_counter.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/gemm.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

absl::StatusOr<Tensor> DeviceRandom(const Shape& shape, DType dtype, uint32_t seed) {
  LRKV_TRY_ASSIGN(Tensor host, Tensor::Empty(shape, DType::kF32));
  uint32_t x = seed * 2654435761u + 1;
  for (int64_t i = 0; i < host.numel(); ++i) {
    x = x * 1664525u + 1013904223u;
    host.data<float>()[i] = static_cast<float>(x >> 8) / float(1 << 24) * 2.0f - 1.0f;
  }
  return host.To(Device::kCuda, dtype);
}

// Median milliseconds of `repeats` timed calls after `warmup` untimed ones; *flops: FLOPs of one call.
absl::StatusOr<double> Time(const std::function<absl::Status()>& op, int warmup, int repeats, int64_t* flops) {
  for (int i = 0; i < warmup; ++i) LRKV_TRY(op());
  LRKV_TRY(cuda::Synchronize());
  std::vector<double> ms;
  LRKV_TRY_ASSIGN(cuda::Event start, cuda::Event::Create(/*timing=*/true));
  LRKV_TRY_ASSIGN(cuda::Event stop, cuda::Event::Create(/*timing=*/true));
  for (int i = 0; i < repeats; ++i) {
    FlopCounter counter;
    const CountFlopsInto counting(&counter);
    LRKV_TRY(start.Record(cuda::CurrentStream()));
    LRKV_TRY(op());
    LRKV_TRY(stop.Record(cuda::CurrentStream()));
    LRKV_TRY(cuda::Synchronize());
    *flops = counter.Total();
    LRKV_TRY_ASSIGN(float t, stop.ElapsedMsSince(start));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// One JSON line per measurement.
void Report(const std::string& op, DType dtype, const std::string& shape, double ms, int64_t flops) {
  nlohmann::ordered_json j;
  j["op"] = op, j["dtype"] = DTypeName(dtype), j["shape"] = shape, j["ms"] = ms;
  j["tflops"] = flops / (ms * 1e-3) / 1e12;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

absl::Status Run() {
  LRKV_TRY(cuda::EnsureInitialized());
  for (DType dtype : {DType::kBF16, DType::kF32}) {
    // A square one, then the 1.3B shape's (configs/gpu: 8 x 2048 tokens, d 2048): QKV, MLP up and
    // down, the vocabulary head.
    const int64_t shapes[][3] = {
        {4096, 4096, 4096}, {16384, 6144, 2048}, {16384, 8192, 2048}, {16384, 2048, 8192}, {16384, 50304, 2048}};
    for (const auto& s : shapes) {
      const int64_t m = s[0], n = s[1], k = s[2];
      LRKV_TRY_ASSIGN(Tensor a, DeviceRandom({m, k}, dtype, 1));
      LRKV_TRY_ASSIGN(Tensor b, DeviceRandom({k, n}, dtype, 2));
      LRKV_TRY_ASSIGN(Tensor c, Tensor::Empty({m, n}, dtype, Device::kCuda));
      const GemmArgs g = GemmArgs::Dense(m, n, k);
      int64_t flops = 0;
      LRKV_TRY_ASSIGN(double ms, Time([&] { return Gemm(a, b, c, g, FlopCategory::kMlp); }, 3, 20, &flops));
      Report("gemm", dtype, absl::StrCat(m, "x", n, "x", k), ms, flops);
    }
    // The 1.3B shape's attention: B 4, T 2048, H 16, D 128 (and an MLA-like Dqk 192 / Dv 128).
    for (const auto& [dqk, dv] : std::vector<std::pair<int64_t, int64_t>>{{128, 128}, {192, 128}}) {
      const int64_t b = 4, t = 2048, h = 16;
      LRKV_TRY_ASSIGN(Tensor q, DeviceRandom({b, t, h, dqk}, dtype, 3));
      LRKV_TRY_ASSIGN(Tensor k, DeviceRandom({b, t, h, dqk}, dtype, 4));
      LRKV_TRY_ASSIGN(Tensor v, DeviceRandom({b, t, h, dv}, dtype, 5));
      LRKV_TRY_ASSIGN(Tensor dout, DeviceRandom({b, t, h, dv}, dtype, 6));
      LRKV_TRY_ASSIGN(Tensor o, Tensor::Empty({b, t, h, dv}, dtype, Device::kCuda));
      LRKV_TRY_ASSIGN(Tensor lse, Tensor::Empty({b, h, t}, AccumDType(dtype), Device::kCuda));
      LRKV_TRY_ASSIGN(Tensor dq, Tensor::Empty(q.shape(), dtype, Device::kCuda));
      LRKV_TRY_ASSIGN(Tensor dk, Tensor::Empty(k.shape(), dtype, Device::kCuda));
      LRKV_TRY_ASSIGN(Tensor dvt, Tensor::Empty(v.shape(), dtype, Device::kCuda));
      const double scale = 1.0 / std::sqrt(double(dqk));
      const std::string shape = absl::StrCat("B", b, " T", t, " H", h, " Dqk", dqk, " Dv", dv);
      int64_t flops = 0;
      LRKV_TRY_ASSIGN(double fwd, Time([&] { return CausalAttentionForward(q, k, v, scale, o, lse); }, 2, 10, &flops));
      Report("attention_forward", dtype, shape, fwd, flops);
      LRKV_TRY_ASSIGN(double bwd, Time([&] { return CausalAttentionBackward(dout, q, k, v, lse, scale, dq, dk, dvt); },
                                       2, 10, &flops));
      Report("attention_backward", dtype, shape, bwd, flops);
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace lrkv

int main() {
  if (lrkv::cuda::DeviceCount() == 0) {
    std::fprintf(stderr, "gpu_op_bench: no CUDA device; skipped\n");
    return 77;
  }
  const absl::Status s = lrkv::Run();
  if (!s.ok()) {
    std::fprintf(stderr, "gpu_op_bench: %s\n", std::string(s.ToString()).c_str());
    return 1;
  }
  return 0;
}
