// The CUDA GEMM's host side (runtime/ops/cuda/cublaslt_gemm.h: the row-major product as cuBLASLt's
// column-major one with the operands swapped, the layouts, batch strides, scale types and the
// plan cache) run against tests/testing/cublaslt_on_cpu.cc, cuBLASLt's calls carried out on the
// CPU as its documentation defines them, and compared with the CPU backend's Gemm op on the same
// tensors: every element of C's buffer, the padding between rows and batch entries included (which
// must keep its NaNs). On a GPU, backend_ops_test checks the same path against the real library.
#include <cmath>
#include <limits>
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/ops/cuda/cublaslt_gemm.h"
#include "runtime/ops/gemm.h"
#include "tests/testing/cublaslt_on_cpu.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

using cuda::cublaslt::Context;
using cuda::cublaslt::PlanCache;
namespace fake = testing::cublaslt_on_cpu;

Context FakeContext() {
  Context lt;
  EXPECT_EQ(cublasLtCreate(&lt.handle), CUBLAS_STATUS_SUCCESS);
  return lt;
}

// n uniform values in [-1, 1), in `dtype`.
Tensor RandomOf(int64_t n, uint64_t seed, DType dtype) {
  Tensor t = testing::Random({n}, seed, DType::kF32);
  return dtype == DType::kF32 ? t : t.To(Device::kCpu, dtype).value();
}

// C's buffer filled with NaN: what the GEMM must not write stays NaN.
Tensor NanOf(int64_t n, DType dtype) {
  Tensor t = Tensor::Empty({n}, DType::kF32).value();
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  return dtype == DType::kF32 ? t : t.To(Device::kCpu, dtype).value();
}

Tensor AsF64(const Tensor& t) { return t.To(Device::kCpu, DType::kF64).value(); }

// Every element equal within tol relative to the largest magnitude, NaN exactly where the other is.
void ExpectSameBuffer(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  const Tensor g = AsF64(got), w = AsF64(want);
  double scale = 1e-30;
  for (int64_t i = 0; i < w.numel(); ++i)
    if (!std::isnan(w.data<double>()[i])) scale = std::max(scale, std::abs(w.data<double>()[i]));
  int64_t bad = 0, written = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double x = g.data<double>()[i], y = w.data<double>()[i];
    if (std::isnan(y)) {
      if (!std::isnan(x)) ++bad;
      continue;
    }
    ++written;
    if (std::isnan(x) || std::abs(x - y) > tol * scale) ++bad;
  }
  EXPECT_EQ(bad, 0) << what << ": elements differing from the CPU's Gemm";
  EXPECT_GT(written, 0) << what;
}

struct Dtypes {
  DType ab, c;
  double tol;
};
void PrintTo(const Dtypes& d, std::ostream* os) { *os << DTypeName(d.ab) << " into " << DTypeName(d.c); }

// The shape of a case: padded leading dimensions and gaps between batch entries when `padded`.
GemmArgs Args(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t batch, bool padded, double alpha,
              double beta) {
  GemmArgs g = GemmArgs::Dense(m, n, k, ta, tb);
  const int64_t pad = padded ? 3 : 0;
  g.lda += pad, g.ldb += pad + 1, g.ldc += pad + 2;
  g.alpha = alpha, g.beta = beta, g.batch = batch;
  g.stride_a = (ta ? k : m) * g.lda + pad * 5;
  g.stride_b = (tb ? n : k) * g.ldb + pad * 7;
  g.stride_c = m * g.ldc + pad * 2;
  return g;
}

// A, B and C for g, each as long as its last batch entry reaches.
void RunCase(const Dtypes& dt, const GemmArgs& g, uint64_t seed, const std::string& what) {
  const int64_t len_a = (g.batch - 1) * g.stride_a + (g.trans_a ? g.k : g.m) * g.lda;
  const int64_t len_b = (g.batch - 1) * g.stride_b + (g.trans_b ? g.n : g.k) * g.ldb;
  const int64_t len_c = (g.batch - 1) * g.stride_c + g.m * g.ldc;
  const Tensor a = RandomOf(len_a, seed, dt.ab), b = RandomOf(len_b, seed + 1, dt.ab);
  Tensor c_want = NanOf(len_c, dt.c);
  if (g.beta != 0) {  // C's entries (not its padding) start from values that beta scales
    Tensor start = AsF64(c_want);
    const Tensor r = AsF64(RandomOf(len_c, seed + 2, DType::kF32));
    for (int64_t bi = 0; bi < g.batch; ++bi)
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t j = 0; j < g.n; ++j) {
          const int64_t at = bi * g.stride_c + i * g.ldc + j;
          start.data<double>()[at] = r.data<double>()[at];
        }
    c_want = start.To(Device::kCpu, dt.c).value();
  }
  Tensor c_got = c_want.To(Device::kCpu, dt.c).value();
  ASSERT_TRUE(Gemm(a, b, c_want, g, FlopCategory::kMlp).ok()) << what;

  static Context lt = FakeContext();
  static PlanCache cache;
  const absl::Status s = cuda::cublaslt::Matmul(lt, cache, a, b, c_got, g, nullptr);
  ASSERT_TRUE(s.ok()) << what << ": " << s;
  ExpectSameBuffer(c_got, c_want, dt.tol, what);
}

class CublasLtGemmOnCpu : public ::testing::TestWithParam<Dtypes> {};

TEST_P(CublasLtGemmOnCpu, EveryTransposeDenseStridedAndScaled) {
  const Dtypes dt = GetParam();
  uint64_t seed = 10;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const std::string t = absl::StrCat(ta ? "T" : "N", tb ? "T" : "N");
      RunCase(dt, Args(ta, tb, 5, 7, 3, 1, false, 1.0, 0.0), seed++, t + " dense");
      RunCase(dt, Args(ta, tb, 4, 9, 6, 1, true, 0.5, 0.25), seed++, t + " padded, alpha 0.5, beta 0.25");
      RunCase(dt, Args(ta, tb, 3, 5, 8, 3, true, 1.0, 1.0), seed++, t + " 3 strided batch entries, beta 1");
      RunCase(dt, Args(ta, tb, 1, 17, 12, 2, false, -2.0, 0.0), seed++, t + " one row, 2 batch entries");
    }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CublasLtGemmOnCpu,
                         ::testing::Values(Dtypes{DType::kF32, DType::kF32, 1e-5},
                                           Dtypes{DType::kF64, DType::kF64, 1e-12},
                                           Dtypes{DType::kBF16, DType::kBF16, 1e-2},
                                           Dtypes{DType::kBF16, DType::kF32, 1e-5}),
                         [](const ::testing::TestParamInfo<Dtypes>& info) {
                           return absl::StrCat(DTypeName(info.param.ab), "_into_", DTypeName(info.param.c));
                         });

// A shape is planned once; a new alignment of an operand is a new plan, since the algorithm was
// chosen for the old one (the CPU cuBLASLt refuses a matmul on operands less aligned than that).
TEST(CublasLtGemmOnCpuPlans, OnePlanPerShapeAndAlignment) {
  Context lt = FakeContext();
  PlanCache cache;
  const GemmArgs g = GemmArgs::Dense(6, 8, 5, false, true);
  const Tensor a = RandomOf(6 * 5 + 1, 1, DType::kF32), b = RandomOf(8 * 5, 2, DType::kF32);
  Tensor c = NanOf(6 * 8, DType::kF32), c_want = NanOf(6 * 8, DType::kF32);
  const int descs = fake::GetCounts().matmul_descs, matmuls = fake::GetCounts().matmuls;
  ASSERT_TRUE(cuda::cublaslt::Matmul(lt, cache, a, b, c, g, nullptr).ok());
  ASSERT_TRUE(cuda::cublaslt::Matmul(lt, cache, a, b, c, g, nullptr).ok());
  EXPECT_EQ(fake::GetCounts().matmul_descs, descs + 1);
  EXPECT_EQ(cache.plans.size(), 1u);

  // A one element further on: 4-byte aligned where the first plan's A was at least 64.
  const Tensor a_off = a.Slice(1, 6 * 5 + 1).value();
  ASSERT_LT(cuda::cublaslt::Alignment(a_off.raw()), cuda::cublaslt::Alignment(a.raw()));
  const absl::Status s = cuda::cublaslt::Matmul(lt, cache, a_off, b, c, g, nullptr);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(cache.plans.size(), 2u);
  EXPECT_EQ(fake::GetCounts().matmuls, matmuls + 3);
  ASSERT_TRUE(Gemm(a_off, b, c_want, g, FlopCategory::kMlp).ok());
  ExpectSameBuffer(c, c_want, 1e-5, "A at a 4-byte offset");
}

}  // namespace
}  // namespace lrkv
