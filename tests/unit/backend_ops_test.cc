// Cross-backend op test, in the spirit of ggml's test-backend-ops: every op's forward and backward on
// a target (the CUDA backend in f32 and bf16, the CPU backend in bf16, the emulated device in both:
// a device's rules on host memory, so this test's own code is checked to reach a target's tensors
// only through copies and kernels, as on a GPU) against the CPU backend in
// f32, on random inputs of several shapes: relative error < 1e-5 in f32, < 1e-2 in bf16. The error
// of an output is max |target - reference| / max |reference| over its elements. Target outputs are
// poisoned (NaN-filled) before each op, so an element the kernel does not write fails the test. In
// bf16 both sides see the same inputs: the reference runs in f32 on the bf16-rounded values. The
// bf16 targets keep mixed precision's dtypes (runtime/dtype.h AccumDType): statistics in fp32, and
// the accumulated outputs (GEMM's C, dw, dtable) both in bf16 and in fp32.
//
// Without a CUDA device (or in a build without the CUDA backend) the CUDA targets are skipped with a message.
#include <cmath>
#include <functional>
#include <ostream>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/add.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/embedding.h"
#include "runtime/ops/factored_decode_attention.h"
#include "runtime/ops/gemm.h"
#include "runtime/ops/head_slice.h"
#include "runtime/ops/latent_decode_attention.h"
#include "runtime/ops/layernorm.h"
#include "runtime/ops/optimizer_ops.h"
#include "runtime/ops/packed_linear.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/ops/rope.h"
#include "tests/testing/tensor_testing.h"
#ifdef LRKV_HAVE_CUDA
#include "runtime/cuda/device.h"
#endif

namespace lrkv {
// Test names and messages show the dtype by name.
inline void PrintTo(DType t, std::ostream* os) { *os << DTypeName(t); }
namespace {

using testing::At;

// Empty when a CUDA device can be used, else why not.
std::string NoCudaReason() {
#ifdef LRKV_HAVE_CUDA
  if (cuda::DeviceCount() == 0) return "no CUDA device on this machine (cudaGetDeviceCount failed or returned 0)";
  const absl::Status s = cuda::EnsureInitialized();
  return s.ok() ? "" : std::string(s.message());
#else
  return "this build has no CUDA backend (no CUDA toolkit at configure time)";
#endif
}

// Where and in what dtype an op runs under test.
struct Target {
  Device device;
  DType dtype;
};
Target Accum(Target on) { return {on.device, AccumDType(on.dtype)}; }  // its statistics' dtype
void PrintTo(const Target& on, std::ostream* os) { *os << DeviceName(on.device) << " " << DTypeName(on.dtype); }

double Tolerance(DType dt) { return dt == DType::kBF16 ? 1e-2 : 1e-5; }

// The values the backends compute on: f32 on the host, rounded through `dt`.
Tensor Round(const Tensor& f32, DType dt) {
  if (dt == DType::kF32) return f32.To(Device::kCpu, DType::kF32).value();
  return f32.To(Device::kCpu, dt).value().To(Device::kCpu, DType::kF32).value();
}

// One argument on both sides: `cpu` (the f32 reference) and `dev` (the target's) hold the same values.
struct Arg {
  Tensor cpu, dev;
};

Arg FromHost(const Tensor& f32, Target on) {
  Arg a{Round(f32, on.dtype), Tensor()};
  a.dev = a.cpu.To(on.device, on.dtype).value();
  return a;
}
Arg Input(const Shape& s, uint64_t seed, Target on, double scale = 1.0) {
  Tensor t = testing::Random(s, seed, DType::kF32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] *= static_cast<float>(scale);
  return FromHost(t, on);
}
Arg Positive(const Shape& s, uint64_t seed, Target on) {
  Tensor t = testing::Random(s, seed, DType::kF32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 0.5f + std::abs(t.data<float>()[i]);
  return FromHost(t, on);
}
// An output: zeros for the reference, NaN on the target.
Arg Output(const Shape& s, Target on) {
  Tensor nan = Tensor::Empty(s, DType::kF32).value();
  for (int64_t i = 0; i < nan.numel(); ++i) nan.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  return Arg{Tensor::Zeros(s, DType::kF32).value(), nan.To(on.device, on.dtype).value()};
}

// The target's result against the reference.
void ExpectClose(const Arg& a, DType dt, const std::string& what) {
  const DType host = a.cpu.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
  absl::StatusOr<Tensor> got = a.dev.To(Device::kCpu, host);
  ASSERT_TRUE(got.ok()) << what << ": " << got.status();
  ASSERT_EQ(got->shape(), a.cpu.shape()) << what;
  double max_ref = 0, max_err = 0;
  int64_t worst = -1;
  for (int64_t i = 0; i < a.cpu.numel(); ++i) {
    const double g = At(*got, i), r = At(a.cpu, i);
    if (!std::isfinite(g)) {
      ADD_FAILURE() << what << ": element " << i << " of " << ShapeString(a.cpu.shape()) << " is " << g
                    << " (not written, or not finite); the CPU has " << r;
      return;
    }
    max_ref = std::max(max_ref, std::abs(r));
    if (std::abs(g - r) > max_err) max_err = std::abs(g - r), worst = i;
  }
  const double rel = max_err / std::max(max_ref, 1e-30);
  EXPECT_LE(rel, Tolerance(dt)) << what << " " << ShapeString(a.cpu.shape()) << " " << DTypeName(dt)
                                << ": relative error " << rel << " (element " << worst << ": target "
                                << (worst >= 0 ? At(*got, worst) : 0.0) << ", cpu " << (worst >= 0 ? At(a.cpu, worst) : 0.0)
                                << ")";
}

#define RUN_BOTH(call_cpu, call_dev)                      \
  do {                                                    \
    const absl::Status cpu_status_ = (call_cpu);          \
    ASSERT_TRUE(cpu_status_.ok()) << cpu_status_;         \
    const absl::Status dev_status_ = (call_dev);          \
    ASSERT_TRUE(dev_status_.ok()) << dev_status_;         \
  } while (0)

class BackendOps : public ::testing::TestWithParam<Target> {
 protected:
  void SetUp() override {
    if (on().device != Device::kCuda) return;
    const std::string why = NoCudaReason();
    if (!why.empty()) GTEST_SKIP() << "CUDA backend test skipped: " << why;
  }
  Target on() const { return GetParam(); }
  DType dt() const { return GetParam().dtype; }
};

TEST_P(BackendOps, Gemm) {
  struct Case {
    int64_t m, n, k;
    bool ta, tb;
    double alpha, beta;
    int64_t batch;
  };
  const Case cases[] = {{7, 5, 3, false, false, 1, 0, 1},   {33, 17, 64, true, false, 1, 1, 1},
                        {16, 40, 9, false, true, 0.5, 0, 1}, {5, 6, 7, true, true, 1, 0.5, 1},
                        {12, 8, 16, false, true, 1, 0, 3},   {9, 4, 0, false, false, 1, 0.5, 2}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    GemmArgs g = GemmArgs::Dense(c.m, c.n, c.k, c.ta, c.tb);
    g.alpha = c.alpha, g.beta = c.beta, g.batch = c.batch;
    g.stride_a = c.m * c.k, g.stride_b = c.k * c.n, g.stride_c = c.m * c.n;
    Arg a = Input({c.batch * c.m * c.k}, seed++, on()), b = Input({c.batch * c.k * c.n}, seed++, on());
    // C in the inputs' dtype, and in their accumulator's (bf16 products added into an fp32 gradient).
    for (const Target c_on : {on(), Accum(on())}) {
      Arg out = c.beta != 0 ? Input({c.batch * c.m * c.n}, seed++, c_on) : Output({c.batch * c.m * c.n}, c_on);
      RUN_BOTH(Gemm(a.cpu, b.cpu, out.cpu, g, FlopCategory::kMlp), Gemm(a.dev, b.dev, out.dev, g, FlopCategory::kMlp));
      ExpectClose(out, dt(), absl::StrCat("Gemm m=", c.m, " n=", c.n, " k=", c.k, " C ", DTypeName(c_on.dtype)));
    }
  }
}

TEST_P(BackendOps, Embedding) {
  for (const auto& [n, rows, d, row_begin, vocab] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>>{{6, 5, 4, 0, 5}, {64, 20, 33, 10, 40}}) {
    const Tensor tokens = testing::Tokens({n}, static_cast<int32_t>(vocab), 3);
    Arg table = Input({rows, d}, 1, on()), out = Output({n, d}, on());
    RUN_BOTH(EmbeddingForward(tokens, table.cpu, out.cpu, row_begin, vocab),
             EmbeddingForward(tokens, table.dev, out.dev, row_begin, vocab));
    ExpectClose(out, dt(), "EmbeddingForward");
    Arg dout = Input({n, d}, 2, on());
    for (const Target g_on : {on(), Accum(on())}) {  // a gradient in the compute dtype or in fp32
      Arg dtable = Input({rows, d}, 4, g_on);
      RUN_BOTH(EmbeddingBackward(tokens, dout.cpu, dtable.cpu, row_begin),
               EmbeddingBackward(tokens, dout.dev, dtable.dev, row_begin));
      ExpectClose(dtable, dt(), absl::StrCat("EmbeddingBackward dtable ", DTypeName(g_on.dtype)));
    }
  }
}

TEST_P(BackendOps, RmsNorm) {
  for (const Shape& s : {Shape{3, 8}, Shape{2, 5, 300}, Shape{130, 64}}) {
    const int64_t c = s.back(), n = NumElements(s) / c;
    for (bool with_weight : {true, false}) {
      Arg x = Input(s, 1, on()), w = Input({c}, 2, on()), y = Output(s, on()), r = Output({n}, Accum(on()));
      RUN_BOTH(RmsNormForward(x.cpu, with_weight ? &w.cpu : nullptr, 1e-5, y.cpu, r.cpu),
               RmsNormForward(x.dev, with_weight ? &w.dev : nullptr, 1e-5, y.dev, r.dev));
      ExpectClose(y, dt(), "RmsNormForward y");
      ExpectClose(r, dt(), "RmsNormForward rstd");
      Arg rstd = FromHost(r.cpu, Accum(on())), dy = Input(s, 3, on()), dx = Output(s, on());
      Arg dw = Input({c}, 4, Accum(on()));  // a parameter's gradient: fp32 beside bf16 activations
      RUN_BOTH(RmsNormBackward(dy.cpu, x.cpu, with_weight ? &w.cpu : nullptr, rstd.cpu, dx.cpu,
                               with_weight ? &dw.cpu : nullptr),
               RmsNormBackward(dy.dev, x.dev, with_weight ? &w.dev : nullptr, rstd.dev, dx.dev,
                               with_weight ? &dw.dev : nullptr));
      ExpectClose(dx, dt(), "RmsNormBackward dx");
      if (with_weight) ExpectClose(dw, dt(), "RmsNormBackward dw");
    }
  }
}

TEST_P(BackendOps, LayerNorm) {
  for (const Shape& s : {Shape{3, 8}, Shape{2, 5, 300}, Shape{130, 64}}) {
    const int64_t c = s.back(), n = NumElements(s) / c;
    Arg x = Input(s, 1, on()), w = Input({c}, 2, on()), b = Input({c}, 5, on());
    Arg y = Output(s, on()), mean = Output({n}, Accum(on())), rstd = Output({n}, Accum(on()));
    RUN_BOTH(LayerNormForward(x.cpu, w.cpu, b.cpu, 1e-5, y.cpu, mean.cpu, rstd.cpu),
             LayerNormForward(x.dev, w.dev, b.dev, 1e-5, y.dev, mean.dev, rstd.dev));
    ExpectClose(y, dt(), "LayerNormForward y");
    ExpectClose(mean, dt(), "LayerNormForward mean");
    ExpectClose(rstd, dt(), "LayerNormForward rstd");
    Arg m = FromHost(mean.cpu, Accum(on())), r = FromHost(rstd.cpu, Accum(on())), dy = Input(s, 3, on());
    Arg dx = Output(s, on()), dw = Input({c}, 6, Accum(on())), db = Input({c}, 7, Accum(on()));
    RUN_BOTH(LayerNormBackward(dy.cpu, x.cpu, w.cpu, m.cpu, r.cpu, dx.cpu, dw.cpu, db.cpu),
             LayerNormBackward(dy.dev, x.dev, w.dev, m.dev, r.dev, dx.dev, dw.dev, db.dev));
    ExpectClose(dx, dt(), "LayerNormBackward dx");
    ExpectClose(dw, dt(), "LayerNormBackward dw");
    ExpectClose(db, dt(), "LayerNormBackward db");
  }
}

TEST_P(BackendOps, Rope) {
  for (const auto& [s, rope_dims] : std::vector<std::pair<Shape, int64_t>>{{{2, 7, 3, 8}, 8}, {{1, 33, 2, 24}, 8}}) {
    Arg x = Input(s, 1, on()), y = Output(s, on());
    RUN_BOTH(RopeForward(x.cpu, rope_dims, 10000.0, y.cpu), RopeForward(x.dev, rope_dims, 10000.0, y.dev));
    ExpectClose(y, dt(), "RopeForward");
    Arg dy = Input(s, 2, on());
    RUN_BOTH(RopeBackward(dy.cpu, rope_dims, 10000.0, dy.cpu), RopeBackward(dy.dev, rope_dims, 10000.0, dy.dev));
    ExpectClose(dy, dt(), "RopeBackward (in place)");
  }
}

TEST_P(BackendOps, Attention) {
  struct Case {
    const char* name;
    int64_t b, t, h, hk, dqk, dv;
    KvGroups groups;
  };
  const Case cases[] = {{"mha", 2, 37, 3, 3, 16, 16, {}},     {"gqa", 1, 64, 4, 2, 32, 32, {}},
                        {"mqa", 2, 20, 4, 1, 8, 8, {}},       {"mla", 1, 50, 2, 2, 24, 16, {}},
                        {"t1", 3, 1, 2, 1, 8, 8, {}},         {"tp_offset", 1, 40, 2, 3, 16, 16, {2, 3}},
                        {"long", 1, 129, 2, 2, 64, 64, {}},   {"mla_wide", 1, 80, 2, 2, 192, 128, {}}};
  for (const Case& c : cases) {
    const std::string what = std::string("attention ") + c.name;
    const double scale = 1.0 / std::sqrt(double(c.dqk));
    Arg q = Input({c.b, c.t, c.h, c.dqk}, 1, on()), k = Input({c.b, c.t, c.hk, c.dqk}, 2, on());
    Arg v = Input({c.b, c.t, c.hk, c.dv}, 3, on()), o = Output({c.b, c.t, c.h, c.dv}, on());
    // The saved state is each row's log-sum-exp on both backends (runtime/ops/attention.h).
    Arg lse = Output({c.b, c.h, c.t}, Accum(on()));
    RUN_BOTH(CausalAttentionForward(q.cpu, k.cpu, v.cpu, scale, o.cpu, lse.cpu, c.groups),
             CausalAttentionForward(q.dev, k.dev, v.dev, scale, o.dev, lse.dev, c.groups));
    ExpectClose(o, dt(), what + " forward");
    ExpectClose(lse, dt(), what + " log-sum-exp");
    Arg dout = Input(o.cpu.shape(), 4, on());
    Arg dq = Output(q.cpu.shape(), on()), dk = Output(k.cpu.shape(), on()), dv = Output(v.cpu.shape(), on());
    RUN_BOTH(CausalAttentionBackward(dout.cpu, q.cpu, k.cpu, v.cpu, lse.cpu, scale, dq.cpu, dk.cpu, dv.cpu, c.groups),
             CausalAttentionBackward(dout.dev, q.dev, k.dev, v.dev, lse.dev, scale, dq.dev, dk.dev, dv.dev, c.groups));
    ExpectClose(dq, dt(), what + " dq");
    ExpectClose(dk, dt(), what + " dk");
    ExpectClose(dv, dt(), what + " dv");
  }
}

// LRKV's decoding kernel: one query per head over factored keys (several key ranges, QK-norm,
// partial RoPE). Decoding is CPU only so far: the CUDA backend answers Unimplemented.
TEST_P(BackendOps, FactoredDecodeAttention) {
  if (on().device == Device::kCuda) GTEST_SKIP() << "decoding runs on the CPU only so far (no CUDA kernel)";
  const int64_t s = 1300, h = 3, d = 16, r = 5;
  Arg q = Input({1, 1, h, d}, 1, on()), ks = Input({s, d}, 2, on()), kl = Input({s, h * r}, 3, on());
  Arg bk = Input({h, d, r}, 4, on()), vs = Input({s, d}, 5, on()), vl = Input({s, h * r}, 6, on());
  Arg o = Output({1, 1, h, d + r}, on()), lse = Output({1, h, 1}, Accum(on()));
  const KeyTransform keys{true, 1e-5, 8, 10000.0};
  RUN_BOTH(FactoredDecodeAttention(q.cpu, ks.cpu, kl.cpu, bk.cpu, vs.cpu, vl.cpu, keys, 0.25, o.cpu, lse.cpu),
           FactoredDecodeAttention(q.dev, ks.dev, kl.dev, bk.dev, vs.dev, vl.dev, keys, 0.25, o.dev, lse.dev));
  ExpectClose(o, dt(), "factored decode attention");
  ExpectClose(lse, dt(), "factored decode attention log-sum-exp");
}

// MLA's and MLRA's absorbed decoding kernel: one query per head over latent rows (several ranges,
// with and without the key norm), for one block (MLA) and for two sharing the RoPE key (MLRA). CPU
// only so far, like the factored one.
TEST_P(BackendOps, LatentDecodeAttention) {
  if (on().device == Device::kCuda) GTEST_SKIP() << "decoding runs on the CPU only so far (no CUDA kernel)";
  const int64_t s = 1300, h = 3, c = 12, dr = 4;
  Arg latent = Input({s, c}, 2, on()), latent2 = Input({s, c}, 5, on()), scales = Input({s, 2 * h + 1}, 3, on());
  Arg rope = Input({s, dr}, 4, on());
  for (const int64_t blocks : {1, 2}) {
    Arg q = Input({1, 1, h, blocks * c + dr}, 1, on());
    std::vector<Tensor> cpu = {latent.cpu}, dev = {latent.dev};
    std::vector<int64_t> firsts = {1};  // each block's key scale columns, the second block's first
    if (blocks == 2) cpu.push_back(latent2.cpu), dev.push_back(latent2.dev), firsts = {h + 1, 0};
    for (const bool norm : {false, true}) {
      Arg o = Output({1, 1, h, blocks * c}, on()), lse = Output({1, h, blocks}, Accum(on()));
      RUN_BOTH(LatentDecodeAttention(q.cpu, cpu, rope.cpu, norm ? &scales.cpu : nullptr, firsts, 0.25, o.cpu, lse.cpu),
               LatentDecodeAttention(q.dev, dev, rope.dev, norm ? &scales.dev : nullptr, firsts, 0.25, o.dev, lse.dev));
      const std::string what = absl::StrCat("latent decode attention, ", blocks, " block(s)", norm ? ", key scales" : "");
      ExpectClose(o, dt(), what);
      ExpectClose(lse, dt(), what + " log-sum-exp");
    }
  }
}

// Decoding's packed linear weights (packed_linear.h), stored either way round. The layout is the CPU
// kernels': the CUDA backend answers Unimplemented.
TEST_P(BackendOps, PackedLinear) {
  if (on().device == Device::kCuda) GTEST_SKIP() << "the packed layout is the CPU kernels' (no CUDA kernel)";
  const int64_t rows = 16, in = 40, out = 3 * kPackedPanelColumns + 1;
  Arg x = Input({rows, in}, 1, on());
  for (const bool transposed : {false, true}) {
    Arg w = Input(transposed ? Shape{out, in} : Shape{in, out}, 2, on()), y = Output({rows, out}, on());
    const Tensor packed_cpu = PackLinearWeight(w.cpu, transposed).value();
    absl::StatusOr<Tensor> packed_dev = PackLinearWeight(w.dev, transposed);
    ASSERT_TRUE(packed_dev.ok()) << packed_dev.status();
    RUN_BOTH(PackedLinearForward(x.cpu, packed_cpu, y.cpu, FlopCategory::kMlp),
             PackedLinearForward(x.dev, *packed_dev, y.dev, FlopCategory::kMlp));
    ExpectClose(y, dt(), transposed ? "packed linear, weight stored (out, in)" : "packed linear");
  }
}

TEST_P(BackendOps, Activations) {
  for (const Shape& s : {Shape{5}, Shape{3, 1000}}) {
    for (Activation act : {Activation::kGelu, Activation::kReluSquared}) {
      const std::string name = act == Activation::kGelu ? "gelu" : "relu2";
      Arg x = Input(s, 1, on(), 3.0), y = Output(s, on());
      RUN_BOTH(ActivationForward(act, x.cpu, y.cpu), ActivationForward(act, x.dev, y.dev));
      ExpectClose(y, dt(), name + " forward");
      Arg dy = Input(s, 2, on()), dx = Output(s, on());
      RUN_BOTH(ActivationBackward(act, dy.cpu, x.cpu, dx.cpu), ActivationBackward(act, dy.dev, x.dev, dx.dev));
      ExpectClose(dx, dt(), name + " backward");
    }
    Arg gate = Input(s, 3, on(), 3.0), up = Input(s, 4, on()), y = Output(s, on());
    RUN_BOTH(SwiGluForward(gate.cpu, up.cpu, y.cpu), SwiGluForward(gate.dev, up.dev, y.dev));
    ExpectClose(y, dt(), "swiglu forward");
    Arg dy = Input(s, 5, on()), dgate = Output(s, on()), dup = Output(s, on());
    RUN_BOTH(SwiGluBackward(dy.cpu, gate.cpu, up.cpu, dgate.cpu, dup.cpu),
             SwiGluBackward(dy.dev, gate.dev, up.dev, dgate.dev, dup.dev));
    ExpectClose(dgate, dt(), "swiglu dgate");
    ExpectClose(dup, dt(), "swiglu dup");
  }
}

TEST_P(BackendOps, Add) {
  for (const Shape& s : {Shape{1}, Shape{4, 777}}) {
    Arg a = Input(s, 1, on()), b = Input(s, 2, on()), out = Output(s, on());
    RUN_BOTH(Add(a.cpu, b.cpu, out.cpu), Add(a.dev, b.dev, out.dev));
    ExpectClose(out, dt(), "Add");
    RUN_BOTH(Add(a.cpu, b.cpu, a.cpu), Add(a.dev, b.dev, a.dev));
    ExpectClose(a, dt(), "Add (in place)");
  }
}

TEST_P(BackendOps, CrossEntropy) {
  for (const auto& [n, v, col_begin, vocab] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{{4, 10, 0, 10}, {33, 500, 250, 1000}}) {
    const Tensor targets = testing::Tokens({n}, static_cast<int32_t>(vocab), 7);
    Arg logits = Input({n, v}, 1, on(), 4.0), max = Output({n}, Accum(on()));
    RUN_BOTH(LogitRowMax(logits.cpu, max.cpu), LogitRowMax(logits.dev, max.dev));
    ExpectClose(max, dt(), "LogitRowMax");
    Arg m = FromHost(max.cpu, Accum(on()));
    Arg sums{Tensor::Zeros({n, 2}, DType::kF64).value(), Tensor()};
    {
      Tensor nan = Tensor::Empty({n, 2}, DType::kF64).value();
      for (int64_t i = 0; i < 2 * n; ++i) nan.data<double>()[i] = std::numeric_limits<double>::quiet_NaN();
      sums.dev = nan.To(on().device, DType::kF64).value();
    }
    RUN_BOTH(CrossEntropyPartialSums(logits.cpu, targets, col_begin, m.cpu, sums.cpu),
             CrossEntropyPartialSums(logits.dev, targets, col_begin, m.dev, sums.dev));
    ExpectClose(sums, dt(), "CrossEntropyPartialSums");
    Tensor lse_host = Tensor::Empty({n}, DType::kF32).value();
    for (int64_t i = 0; i < n; ++i) lse_host.data<float>()[i] = float(At(m.cpu, i) + std::log(sums.cpu.data<double>()[2 * i]));
    Arg lse = FromHost(lse_host, Accum(on())), dlogits = Output({n, v}, on());
    RUN_BOTH(CrossEntropyBackward(logits.cpu, targets, col_begin, lse.cpu, 1.0 / n, dlogits.cpu),
             CrossEntropyBackward(logits.dev, targets, col_begin, lse.dev, 1.0 / n, dlogits.dev));
    ExpectClose(dlogits, dt(), "CrossEntropyBackward");
  }
}

TEST_P(BackendOps, HeadSlice) {
  for (const auto& [hs, offset] : std::vector<std::pair<int64_t, int64_t>>{{1, 0}, {4, 3}, {1, 5}}) {
    const int64_t n = 9, h = 4, dd = 12, ds = 7 - offset / 2;
    Arg src = Input({n, hs, ds}, 1, on()), dst = Input({n, h, dd}, 2, on());
    RUN_BOTH(CopyToHeadSlice(src.cpu, offset, dst.cpu), CopyToHeadSlice(src.dev, offset, dst.dev));
    ExpectClose(dst, dt(), "CopyToHeadSlice");
    Arg ddst = Input({n, h, dd}, 3, on()), dsrc = Output({n, hs, ds}, on());
    RUN_BOTH(ReduceFromHeadSlice(ddst.cpu, offset, dsrc.cpu), ReduceFromHeadSlice(ddst.dev, offset, dsrc.dev));
    ExpectClose(dsrc, dt(), "ReduceFromHeadSlice");
  }
}

TEST_P(BackendOps, OptimizerOps) {
  for (const Shape& s : {Shape{3}, Shape{70, 1000}}) {
    Arg x = Input(s, 1, on());
    double cpu = 0, dev = 0;
    RUN_BOTH(SumSquares(x.cpu, &cpu), SumSquares(x.dev, &dev));
    EXPECT_NEAR(dev, cpu, Tolerance(dt()) * cpu) << "SumSquares " << ShapeString(s);
    RUN_BOTH(Scale(x.cpu, 0.37), Scale(x.dev, 0.37));
    ExpectClose(x, dt(), "Scale");
    Arg p = Input(s, 2, on()), g = Input(s, 3, on()), m = Input(s, 4, on(), 0.1), v = Positive(s, 5, on());
    const AdamWStep step{1e-2, 0.9, 0.95, 1e-8, 0.1, 3};
    RUN_BOTH(AdamWUpdate(p.cpu, g.cpu, m.cpu, v.cpu, step), AdamWUpdate(p.dev, g.dev, m.dev, v.dev, step));
    ExpectClose(p, dt(), "AdamW param");
    ExpectClose(m, dt(), "AdamW m");
    ExpectClose(v, dt(), "AdamW v");
  }
}

// Tensor copies and conversions across devices.
TEST_P(BackendOps, TensorCopies) {
  Arg x = Input({5, 301}, 1, on());
  Tensor d2 = Tensor::Empty(x.cpu.shape(), dt(), on().device).value();
  ASSERT_TRUE(d2.CopyFrom(x.dev).ok());  // within the target's device
  ExpectClose(Arg{x.cpu, d2}, dt(), "CopyFrom within the device");
  Tensor sliced = x.dev.Slice(2, 4).value();  // an offset view
  ExpectClose(Arg{x.cpu.Slice(2, 4).value(), sliced}, dt(), "Slice on the device");
  // Casts where the tensor lives: f32 <-> bf16.
  const DType other = dt() == DType::kF32 ? DType::kBF16 : DType::kF32;
  Tensor cast = x.dev.To(on().device, other).value().To(on().device, dt()).value();
  ExpectClose(Arg{Round(Round(x.cpu, other), dt()), cast}, dt(), "cast round trip on the device");
  ASSERT_TRUE(d2.SetZero().ok());
  ExpectClose(Arg{Tensor::Zeros(x.cpu.shape(), DType::kF32).value(), d2}, dt(), "SetZero");
}

INSTANTIATE_TEST_SUITE_P(Targets, BackendOps,
                         ::testing::Values(Target{Device::kCuda, DType::kF32}, Target{Device::kCuda, DType::kBF16},
                                           Target{Device::kCpu, DType::kBF16}, Target{Device::kEmulated, DType::kF32},
                                           Target{Device::kEmulated, DType::kBF16}),
                         [](const ::testing::TestParamInfo<Target>& info) {
                           return std::string(DeviceName(info.param.device)) + "_" + DTypeName(info.param.dtype);
                         });

}  // namespace
}  // namespace lrkv
