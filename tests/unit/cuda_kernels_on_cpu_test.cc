// The CUDA backend's kernels (runtime/ops/cuda/*.cuh) run on the CPU under
// tests/testing/cuda_on_cpu.h, each against the CPU backend's op on the same inputs: in float64 to
// 1e-12, the bf16 cast bit for bit, and the bf16 instantiations with their own dtype paths to 1e-2. On a GPU the cross-backend op test (backend_ops_test)
// checks these kernels through the CUDA backend; this test runs their own code in every build, GPU
// or not: indexing, grid-stride loops over several blocks, block and warp reductions and their
// synchronisation. Each launch uses the grid and block sizes its .cu launcher computes, through the
// same helpers (RowThreads, GridFor, RowsPerChunk, the attention's shared-memory sizes), or a smaller
// grid where a grid-stride loop should run more than once. cuda_on_cpu.h comes first: the kernels'
// headers then use it instead of CUDA's.
// clang-format off
#include "tests/testing/cuda_on_cpu.h"
// clang-format on

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/add.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/cast.h"
#include "runtime/ops/cross_entropy.h"
#include "runtime/ops/cuda/activation.cuh"
#include "runtime/ops/cuda/add.cuh"
#include "runtime/ops/cuda/cast.cuh"
#include "runtime/ops/cuda/cross_entropy.cuh"
#include "runtime/ops/cuda/embedding.cuh"
#include "runtime/ops/cuda/gemm.cuh"
#include "runtime/ops/cuda/head_slice.cuh"
#include "runtime/ops/cuda/layernorm.cuh"
#include "runtime/ops/cuda/optimizer_ops.cuh"
#include "runtime/ops/cuda/rmsnorm.cuh"
#include "runtime/ops/cuda/rope.cuh"
#include "runtime/ops/cuda/simt_attention.cuh"
#include "runtime/ops/embedding.h"
#include "runtime/ops/head_slice.h"
#include "runtime/ops/layernorm.h"
#include "runtime/ops/optimizer_ops.h"
#include "runtime/ops/rmsnorm.h"
#include "runtime/ops/rope.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

using testing::At;
using testing::Random;

// Runs f() as every thread of a grid x block launch.
template <typename F>
void OnCpu(dim3 grid, dim3 block, F f) {
  cuda_on_cpu::Launch(grid, block, 0, [&f](unsigned char*) { f(); });
}

// The same with `bytes` of dynamic shared memory (NaN-filled), which f(unsigned char*) takes.
template <typename F>
void OnCpuShared(dim3 grid, dim3 block, size_t bytes, F f) {
  cuda_on_cpu::Launch(grid, block, bytes, [&f](unsigned char* smem) { f(smem); });
}

Tensor New(const Shape& shape, DType dtype = DType::kF64) { return Tensor::Zeros(shape, dtype).value(); }

double Error(const Tensor& got, const Tensor& want) { return testing::RelativeError(got, want); }

// A float64 tensor rounded to bf16: the bf16 copy whose bits a kernel reads (CPU bf16 storage and
// the emulation's bf16 are the same 16 bits) and the rounded values back in float64, the reference's.
struct Bf16 {
  Tensor bits, f64;
  const cuda::bf16* data() const { return static_cast<const cuda::bf16*>(bits.raw()); }
  cuda::bf16* data() { return static_cast<cuda::bf16*>(bits.raw()); }
};
Bf16 ToBf16(const Tensor& t) {
  Bf16 b{t.To(Device::kCpu, DType::kBF16).value(), {}};
  b.f64 = b.bits.To(Device::kCpu, DType::kF64).value();
  return b;
}
Tensor AsF64(const Tensor& bf16) { return bf16.To(Device::kCpu, DType::kF64).value(); }

TEST(CudaKernelsOnCpu, RmsNorm) {
  const int64_t n = 5, c = 300;  // 300 columns: RowThreads gives 256 threads, some with two columns
  const double eps = 1e-5;
  const Tensor x = Random({n, c}, 1), w = Random({c}, 2), dy = Random({n, c}, 3);
  Tensor y = New({n, c}), rstd = New({n}), dx = New({n, c}), dw = Random({c}, 4);
  ASSERT_TRUE(RmsNormForward(x, &w, eps, y, rstd).ok());
  ASSERT_TRUE(RmsNormBackward(dy, x, &w, rstd, dx, &dw).ok());

  Tensor y_dev = New({n, c}), rstd_dev = New({n}), dx_dev = New({n, c}), dw_dev = Random({c}, 4);
  const double *xs = x.data<double>(), *ws = w.data<double>(), *dys = dy.data<double>();
  OnCpu(dim3(n), dim3(cuda::RowThreads(c)),
        [&] { cuda::rmsnorm::ForwardKernel<double>(xs, ws, eps, y_dev.data<double>(), rstd_dev.data<double>(), c); });
  EXPECT_LT(Error(y_dev, y), 1e-12);
  EXPECT_LT(Error(rstd_dev, rstd), 1e-12);
  OnCpu(dim3(n), dim3(cuda::RowThreads(c)),
        [&] { cuda::rmsnorm::BackwardDxKernel<double>(dys, xs, ws, rstd.data<double>(), dx_dev.data<double>(), c); });
  EXPECT_LT(Error(dx_dev, dx), 1e-12);
  // dw in two stages, with chunks of 2 rows (the launcher's RowsPerChunk is 128 and more) so that
  // the second stage sums several, and a grid of 1 block over the 300 columns for its stride loop
  const int64_t per = 2, chunks = (n + per - 1) / per;
  Tensor partial = New({chunks, c});
  OnCpu(dim3(unsigned((c + cuda::kThreads - 1) / cuda::kThreads), unsigned(chunks)), dim3(cuda::kThreads),
        [&] { cuda::rmsnorm::DwPartials<double>(dys, xs, rstd.data<double>(), n, c, per, partial.data<double>()); });
  OnCpu(dim3(1), dim3(cuda::kThreads),
        [&] { cuda::FinishColumnSums<double, double>(partial.data<double>(), chunks, c, dw_dev.data<double>()); });
  EXPECT_LT(Error(dw_dev, dw), 1e-12);
}

TEST(CudaKernelsOnCpu, LayerNorm) {
  const int64_t n = 5, c = 40;  // 40 columns: a block of 64 threads, 24 of them idle
  const double eps = 1e-5;
  const Tensor x = Random({n, c}, 1), w = Random({c}, 2), b = Random({c}, 3), dy = Random({n, c}, 4);
  Tensor y = New({n, c}), mean = New({n}), rstd = New({n}), dx = New({n, c}), dw = Random({c}, 5), db = Random({c}, 6);
  ASSERT_TRUE(LayerNormForward(x, w, b, eps, y, mean, rstd).ok());
  ASSERT_TRUE(LayerNormBackward(dy, x, w, mean, rstd, dx, dw, db).ok());

  Tensor y_dev = New({n, c}), mean_dev = New({n}), rstd_dev = New({n}), dx_dev = New({n, c});
  Tensor dw_dev = Random({c}, 5), db_dev = Random({c}, 6);
  const double *xs = x.data<double>(), *ws = w.data<double>(), *dys = dy.data<double>();
  OnCpu(dim3(n), dim3(cuda::RowThreads(c)), [&] {
    cuda::layernorm::ForwardKernel<double>(xs, ws, b.data<double>(), eps, y_dev.data<double>(), mean_dev.data<double>(),
                                           rstd_dev.data<double>(), c);
  });
  EXPECT_LT(Error(y_dev, y), 1e-12);
  EXPECT_LT(Error(mean_dev, mean), 1e-12);
  EXPECT_LT(Error(rstd_dev, rstd), 1e-12);
  OnCpu(dim3(n), dim3(cuda::RowThreads(c)), [&] {
    cuda::layernorm::BackwardDxKernel<double>(dys, xs, ws, mean.data<double>(), rstd.data<double>(),
                                              dx_dev.data<double>(), c);
  });
  EXPECT_LT(Error(dx_dev, dx), 1e-12);
  const int64_t per = cuda::RowsPerChunk(n), chunks = (n + per - 1) / per;
  Tensor pw = New({chunks, c}), pb = New({chunks, c});
  OnCpu(dim3(unsigned((c + cuda::kThreads - 1) / cuda::kThreads), unsigned(chunks)), dim3(cuda::kThreads), [&] {
    cuda::layernorm::ParamPartials<double>(dys, xs, mean.data<double>(), rstd.data<double>(), n, c, per,
                                           pw.data<double>(), pb.data<double>());
  });
  OnCpu(dim3(cuda::GridFor(c)), dim3(cuda::kThreads),
        [&] { cuda::FinishColumnSums<double, double>(pw.data<double>(), chunks, c, dw_dev.data<double>()); });
  OnCpu(dim3(cuda::GridFor(c)), dim3(cuda::kThreads),
        [&] { cuda::FinishColumnSums<double, double>(pb.data<double>(), chunks, c, db_dev.data<double>()); });
  EXPECT_LT(Error(dw_dev, dw), 1e-12);
  EXPECT_LT(Error(db_dev, db), 1e-12);
}

// The vocabulary-parallel pieces on a rank holding columns [3, 3 + v) of every row: targets inside
// that range, before it and after it.
TEST(CudaKernelsOnCpu, CrossEntropy) {
  const int64_t n = 4, v = 70, col_begin = 3;
  const Tensor z = Random({n, v}, 1);
  Tensor targets = Tensor::Zeros({n}, DType::kI32).value();
  const int32_t ids[n] = {3, 50, 1, 200};
  std::copy(ids, ids + n, targets.data<int32_t>());
  Tensor mx = New({n}), sums = New({n, 2}), lse = Random({n}, 2), dz = New({n, v});
  ASSERT_TRUE(LogitRowMax(z, mx).ok());
  ASSERT_TRUE(CrossEntropyPartialSums(z, targets, col_begin, mx, sums).ok());
  ASSERT_TRUE(CrossEntropyBackward(z, targets, col_begin, lse, 0.25, dz).ok());

  Tensor mx_dev = New({n}), sums_dev = New({n, 2}), dz_dev = New({n, v});
  const double* zs = z.data<double>();
  const int32_t* ts = targets.data<int32_t>();
  OnCpu(dim3(n), dim3(cuda::RowThreads(v)),
        [&] { cuda::cross_entropy::RowMaxKernel<double>(zs, mx_dev.data<double>(), v); });
  EXPECT_LT(Error(mx_dev, mx), 1e-12);
  OnCpu(dim3(n), dim3(cuda::RowThreads(v)), [&] {
    cuda::cross_entropy::PartialSumsKernel<double>(zs, ts, col_begin, mx.data<double>(), sums_dev.data<double>(), v);
  });
  EXPECT_LT(Error(sums_dev, sums), 1e-12);
  OnCpu(dim3(2), dim3(cuda::kThreads), [&] {  // 2 blocks over 280 logits: the stride loop runs twice
    cuda::cross_entropy::BackwardKernel<double>(zs, ts, col_begin, lse.data<double>(), 0.25, dz_dev.data<double>(), n,
                                                v);
  });
  EXPECT_LT(Error(dz_dev, dz), 1e-12);
}

// A vocabulary block [2, 2 + rows) of the table, tokens inside and outside it, one repeated: the
// backward's segments (GroupByRow) sum a row's positions in order.
TEST(CudaKernelsOnCpu, Embedding) {
  const int64_t n = 6, rows = 5, d = 33, row_begin = 2, vocab = 9;
  Tensor tokens = Tensor::Zeros({n}, DType::kI32).value();
  const int32_t ids[n] = {2, 6, 0, 4, 2, 8};
  std::copy(ids, ids + n, tokens.data<int32_t>());
  const Tensor table = Random({rows, d}, 1), dout = Random({n, d}, 2);
  Tensor out = New({n, d}), dtable = Random({rows, d}, 3);
  ASSERT_TRUE(EmbeddingForward(tokens, table, out, row_begin, vocab).ok());
  ASSERT_TRUE(EmbeddingBackward(tokens, dout, dtable, row_begin).ok());

  Tensor out_dev = Random({n, d}, 4), dtable_dev = Random({rows, d}, 3);
  const int32_t* tok = tokens.data<int32_t>();
  OnCpu(dim3(1), dim3(cuda::kThreads), [&] {
    cuda::embedding::ForwardKernel<double>(tok, table.data<double>(), out_dev.data<double>(), n, rows, d, row_begin);
  });
  EXPECT_LT(Error(out_dev, out), 1e-12);
  const cuda::embedding::Segments seg = cuda::embedding::GroupByRow(tok, n, rows, row_begin);
  ASSERT_EQ(seg.rows.size(), 3u);  // rows 0 (twice), 2 and 4 of the block
  const int64_t segments = int64_t(seg.rows.size());
  OnCpu(dim3(cuda::GridFor(segments * d)), dim3(cuda::kThreads), [&] {
    cuda::embedding::BackwardKernel<double, double>(seg.order.data(), seg.begin.data(), seg.rows.data(),
                                                    dout.data<double>(), dtable_dev.data<double>(), segments, d);
  });
  EXPECT_LT(Error(dtable_dev, dtable), 1e-12);
}

// Forward from position 5 and backward, with a pass-through part (rope_dims < D, MLA's layout).
TEST(CudaKernelsOnCpu, Rope) {
  const int64_t b = 2, t = 3, h = 2, d = 12, rope_dims = 8, first = 5;
  const double theta = 10000;
  const Tensor x = Random({b, t, h, d}, 1);
  Tensor y = New({b, t, h, d}), dx = New({b, t, h, d});
  ASSERT_TRUE(RopeForward(x, rope_dims, theta, y, first).ok());
  ASSERT_TRUE(RopeBackward(x, rope_dims, theta, dx).ok());
  const int64_t rows = b * t * h, work = rows * (d - rope_dims / 2);
  for (const double direction : {+1.0, -1.0}) {
    Tensor got = New({b, t, h, d});
    OnCpu(dim3(cuda::GridFor(work)), dim3(cuda::kThreads), [&] {
      cuda::rope::RopeKernel<double>(x.data<double>(), got.data<double>(), rows, t, h, d, rope_dims, theta, direction,
                                     direction > 0 ? first : 0);
    });
    EXPECT_LT(Error(got, direction > 0 ? y : dx), 1e-12) << "direction " << direction;
  }
}

TEST(CudaKernelsOnCpu, HeadSlices) {
  const int64_t n = 3, h = 4, dd = 10, ds = 3, offset = 6;
  for (const int64_t hs : {int64_t(1), h}) {  // one source row broadcast to every head, or one per head
    const Tensor src = Random({n, hs, ds}, 1), ddst = Random({n, h, dd}, 2);
    Tensor dst = Random({n, h, dd}, 3), dsrc = New({n, hs, ds});
    ASSERT_TRUE(CopyToHeadSlice(src, offset, dst).ok());
    ASSERT_TRUE(ReduceFromHeadSlice(ddst, offset, dsrc).ok());
    Tensor dst_dev = Random({n, h, dd}, 3), dsrc_dev = New({n, hs, ds});
    OnCpu(dim3(cuda::GridFor(n * h * ds)), dim3(cuda::kThreads), [&] {
      cuda::head_slice::CopyKernel<double>(src.data<double>(), dst_dev.data<double>(), n, h, dd, hs, ds, offset);
    });
    EXPECT_LT(Error(dst_dev, dst), 1e-12) << "source heads " << hs;
    OnCpu(dim3(cuda::GridFor(n * hs * ds)), dim3(cuda::kThreads), [&] {
      cuda::head_slice::ReduceKernel<double>(ddst.data<double>(), dsrc_dev.data<double>(), n, h, dd, hs, ds, offset);
    });
    EXPECT_LT(Error(dsrc_dev, dsrc), 1e-12) << "source heads " << hs;
  }
}

TEST(CudaKernelsOnCpu, Activations) {
  const int64_t n = 300;
  const Tensor x = Random({n}, 1), up = Random({n}, 2), dy = Random({n}, 3);
  const double *xs = x.data<double>(), *ups = up.data<double>(), *dys = dy.data<double>();
  for (const Activation act : {Activation::kGelu, Activation::kReluSquared}) {
    Tensor y = New({n}), dx = New({n}), y_dev = New({n}), dx_dev = New({n});
    ASSERT_TRUE(ActivationForward(act, x, y).ok());
    ASSERT_TRUE(ActivationBackward(act, dy, x, dx).ok());
    const bool gelu = act == Activation::kGelu;
    OnCpu(dim3(1), dim3(cuda::kThreads),
          [&] { cuda::activation::ForwardKernel<double>(gelu, xs, y_dev.data<double>(), n); });
    OnCpu(dim3(1), dim3(cuda::kThreads),
          [&] { cuda::activation::BackwardKernel<double>(gelu, dys, xs, dx_dev.data<double>(), n); });
    EXPECT_LT(Error(y_dev, y), 1e-12) << (gelu ? "GELU" : "ReLU^2");
    EXPECT_LT(Error(dx_dev, dx), 1e-12) << (gelu ? "GELU" : "ReLU^2");
  }
  Tensor y = New({n}), dgate = New({n}), dup = New({n});
  ASSERT_TRUE(SwiGluForward(x, up, y).ok());
  ASSERT_TRUE(SwiGluBackward(dy, x, up, dgate, dup).ok());
  Tensor y_dev = New({n}), dgate_dev = New({n}), dup_dev = New({n});
  OnCpu(dim3(cuda::GridFor(n)), dim3(cuda::kThreads),
        [&] { cuda::activation::GluForwardKernel<double>(xs, ups, y_dev.data<double>(), n); });
  OnCpu(dim3(cuda::GridFor(n)), dim3(cuda::kThreads), [&] {
    cuda::activation::GluBackwardKernel<double>(dys, xs, ups, dgate_dev.data<double>(), dup_dev.data<double>(), n);
  });
  EXPECT_LT(Error(y_dev, y), 1e-12);
  EXPECT_LT(Error(dgate_dev, dgate), 1e-12);
  EXPECT_LT(Error(dup_dev, dup), 1e-12);
}

TEST(CudaKernelsOnCpu, AddAndCast) {
  const int64_t n = 300;
  const Tensor a = Random({n}, 1), b = Random({n}, 2);
  Tensor sum = New({n}), sum_dev = New({n});
  ASSERT_TRUE(Add(a, b, sum).ok());
  OnCpu(dim3(1), dim3(cuda::kThreads),
        [&] { cuda::add::AddKernel<double>(a.data<double>(), b.data<double>(), sum_dev.data<double>(), n); });
  EXPECT_LT(Error(sum_dev, sum), 1e-12);
  // To bf16 (rounded to nearest even, as the CPU's Cast) and back to f64.
  Tensor narrow = New({n}, DType::kBF16), wide = New({n}), wide_dev = New({n});
  ASSERT_TRUE(Cast(a, narrow).ok());
  ASSERT_TRUE(Cast(narrow, wide).ok());
  std::vector<cuda::bf16> bits(n);
  OnCpu(dim3(cuda::GridFor(n)), dim3(cuda::kThreads),
        [&] { cuda::cast::CastKernel<double, cuda::bf16>(a.data<double>(), bits.data(), n); });
  OnCpu(dim3(cuda::GridFor(n)), dim3(cuda::kThreads),
        [&] { cuda::cast::CastKernel<cuda::bf16, double>(bits.data(), wide_dev.data<double>(), n); });
  EXPECT_EQ(Error(wide_dev, wide), 0);
}

TEST(CudaKernelsOnCpu, OptimizerOps) {
  const int64_t n = 1000;
  const Tensor x = Random({n}, 1);
  double want = 0;
  ASSERT_TRUE(SumSquares(x, &want).ok());
  // The sum of squares in two stages: 3 blocks (the launcher's is min(kSumBlocks, GridFor(n))), so
  // each block's stride loop runs twice, then one block over the partial sums.
  const int blocks = 3;
  std::vector<double> partial(blocks + 1, NAN);
  OnCpu(dim3(blocks), dim3(cuda::kThreads),
        [&] { cuda::optimizer::PartialSumSquares<double>(x.data<double>(), n, partial.data()); });
  OnCpu(dim3(1), dim3(cuda::kThreads),
        [&] { cuda::optimizer::SumPartials(partial.data(), blocks, partial.data() + blocks); });
  EXPECT_NEAR(partial[blocks], want, 1e-12 * want);

  Tensor scaled = Random({n}, 1), scaled_dev = Random({n}, 1);
  ASSERT_TRUE(Scale(scaled, 0.3).ok());
  OnCpu(dim3(2), dim3(cuda::kThreads),
        [&] { cuda::optimizer::ScaleKernel<double>(scaled_dev.data<double>(), n, 0.3); });
  EXPECT_LT(Error(scaled_dev, scaled), 1e-12);

  const AdamWStep s{1e-2, 0.9, 0.95, 1e-8, 0.1, 3};
  const Tensor g = Random({n}, 2);
  Tensor p = Random({n}, 3), m = Random({n}, 4), v = Random({n}, 5);
  for (int64_t i = 0; i < n; ++i) testing::Set(v, i, std::abs(At(v, i)));  // second moments are not negative
  Tensor p_dev = p.To(Device::kCpu, DType::kF64).value(), m_dev = m.To(Device::kCpu, DType::kF64).value();
  Tensor v_dev = v.To(Device::kCpu, DType::kF64).value();
  ASSERT_TRUE(AdamWUpdate(p, g, m, v, s).ok());
  const double c1 = 1 / (1 - std::pow(s.beta1, double(s.step))), c2 = 1 / (1 - std::pow(s.beta2, double(s.step)));
  OnCpu(dim3(cuda::GridFor(n)), dim3(cuda::kThreads), [&] {
    cuda::optimizer::AdamKernel<double>(p_dev.data<double>(), g.data<double>(), m_dev.data<double>(),
                                        v_dev.data<double>(), n, s.beta1, s.beta2, s.lr, s.weight_decay, s.eps, c1, c2);
  });
  EXPECT_LT(Error(p_dev, p), 1e-12);
  EXPECT_LT(Error(m_dev, m), 1e-12);
  EXPECT_LT(Error(v_dev, v), 1e-12);
}

// The SIMT attention (f32, f64, and bf16 heads the tensor-core kernels do not take): forward, the
// queries' backward (with the log-sum-exp stored, as the launcher passes it, and recomputed) and the
// keys' backward, against the CPU's attention. Partial query and key tiles (T 37 against blocks of
// 16 and tiles of 32), two sequences, GQA groups of 2, and a TP rank's head offset.
TEST(CudaKernelsOnCpu, SimtAttention) {
  struct Case {
    int64_t b, t, h, hk, dqk, dv;
    KvGroups groups;
  };
  const double scale = 0.3;
  for (const Case& c : {Case{2, 37, 4, 2, 8, 6, {2, 0}}, Case{1, 20, 2, 2, 5, 7, {2, 1}}}) {
    const std::string what = absl::StrCat("T ", c.t, ", H ", c.h, ", Hk ", c.hk, ", offset ", c.groups.q_head_offset);
    const Tensor q = Random({c.b, c.t, c.h, c.dqk}, 1), k = Random({c.b, c.t, c.hk, c.dqk}, 2);
    const Tensor v = Random({c.b, c.t, c.hk, c.dv}, 3), dout = Random({c.b, c.t, c.h, c.dv}, 4);
    Tensor o = New({c.b, c.t, c.h, c.dv}), lse = New({c.b, c.h, c.t});
    Tensor dq = New({c.b, c.t, c.h, c.dqk}), dk = New({c.b, c.t, c.hk, c.dqk}), dv = New({c.b, c.t, c.hk, c.dv});
    ASSERT_TRUE(CausalAttentionForward(q, k, v, scale, o, lse, c.groups).ok());
    ASSERT_TRUE(CausalAttentionBackward(dout, q, k, v, lse, scale, dq, dk, dv, c.groups).ok());

    const cuda::flash::Dims d{c.b, c.t, c.h, c.hk, c.dqk, c.dv, c.groups.group, c.groups.q_head_offset, float(scale)};
    const dim3 query_blocks(unsigned((c.t + cuda::simt::kBQ - 1) / cuda::simt::kBQ), unsigned(c.h), unsigned(c.b));
    const dim3 key_blocks(query_blocks.x, unsigned(c.hk), unsigned(c.b));
    const dim3 threads(cuda::simt::kBlockThreads);
    const double *qs = q.data<double>(), *ks = k.data<double>(), *vs = v.data<double>(), *dos = dout.data<double>();
    Tensor o_dev = New({c.b, c.t, c.h, c.dv}), lse_dev = New({c.b, c.h, c.t});
    OnCpuShared(query_blocks, threads, cuda::simt::ForwardBytes<double>(d), [&](unsigned char* smem) {
      cuda::simt::Forward<double>(smem, qs, ks, vs, o_dev.data<double>(), lse_dev.data<double>(), d, scale);
    });
    EXPECT_LT(Error(o_dev, o), 1e-12) << what;
    EXPECT_LT(Error(lse_dev, lse), 1e-12) << what;
    Tensor dsum = New({c.b, c.h, c.t});
    for (const bool lse_known : {true, false}) {
      Tensor dq_dev = New({c.b, c.t, c.h, c.dqk}), lse_in = lse_known ? lse : Random({c.b, c.h, c.t}, 5);
      OnCpuShared(query_blocks, threads, cuda::simt::BackwardQueriesBytes<double>(d), [&](unsigned char* smem) {
        cuda::simt::BackwardQueries<double>(smem, dos, qs, ks, vs, lse_in.data<double>(), lse_known,
                                            dsum.data<double>(), dq_dev.data<double>(), d, scale);
      });
      EXPECT_LT(Error(dq_dev, dq), 1e-12) << what << (lse_known ? "" : ", log-sum-exp recomputed");
      if (!lse_known) {
        EXPECT_LT(Error(lse_in, lse), 1e-12) << what;
      }
    }
    Tensor dk_dev = New({c.b, c.t, c.hk, c.dqk}), dv_dev = New({c.b, c.t, c.hk, c.dv});
    OnCpuShared(key_blocks, threads, cuda::simt::BackwardKeysBytes<double>(d), [&](unsigned char* smem) {
      cuda::simt::BackwardKeys<double>(smem, dos, qs, ks, vs, lse.data<double>(), dsum.data<double>(),
                                       dk_dev.data<double>(), dv_dev.data<double>(), d, scale);
    });
    EXPECT_LT(Error(dk_dev, dk), 1e-12) << what;
    EXPECT_LT(Error(dv_dev, dv), 1e-12) << what;
  }
}

// gemm.cu's one kernel, for k = 0 (an LRKV rank of zero), where cuBLASLt is not called: C = beta C
// over a batch of 2 matrices of 3 x 4 in rows of 5, the fifth column untouched; beta 0 writes
// zeros over NaNs.
TEST(CudaKernelsOnCpu, GemmWithNoInnerDimension) {
  const int64_t batch = 2, m = 3, n = 4, ldc = 5, stride_c = m * ldc;
  for (const double beta : {0.5, 0.0}) {
    Tensor c = Random({batch * stride_c}, 1);
    if (beta == 0) testing::Set(c, 7, NAN);
    const Tensor before = c.To(Device::kCpu, DType::kF64).value();
    OnCpu(dim3(1), dim3(cuda::kThreads),
          [&] { cuda::gemm::ScaleOnly<double>(c.data<double>(), m, n, ldc, stride_c, batch, beta); });
    for (int64_t i = 0; i < batch * stride_c; ++i) {
      const bool in_c = i % ldc < n;
      const double want = !in_c ? At(before, i) : beta == 0 ? 0.0 : beta * At(before, i);
      EXPECT_EQ(At(c, i), want) << "element " << i << ", beta " << beta;
    }
  }
}

// The bf16 instantiations (bf16 storage, fp32 arithmetic and statistics), against the CPU in float64
// on the same rounded inputs, to the cross-backend test's 1e-2: RMSNorm with an fp32 weight
// gradient (the mixed-precision master's), the cross-entropy backward, the embedding backward into an
// fp32 table gradient, and the SIMT attention (bf16 heads the tensor-core kernels do not take).
TEST(CudaKernelsOnCpu, Bf16) {
  const double tolerance = 1e-2;
  {
    const int64_t n = 3, c = 70;
    Bf16 x = ToBf16(Random({n, c}, 1)), w = ToBf16(Random({c}, 2)), dy = ToBf16(Random({n, c}, 3));
    Tensor y = New({n, c}), rstd = New({n}), dx = New({n, c}), dw = New({c});
    ASSERT_TRUE(RmsNormForward(x.f64, &w.f64, 1e-5, y, rstd).ok());
    ASSERT_TRUE(RmsNormBackward(dy.f64, x.f64, &w.f64, rstd, dx, &dw).ok());
    Tensor y_dev = New({n, c}, DType::kBF16), rstd_dev = New({n}, DType::kF32), dx_dev = New({n, c}, DType::kBF16);
    Tensor partial = New({1, c}, DType::kF32), dw_dev = New({c}, DType::kF32);
    const dim3 rows(n), threads(cuda::RowThreads(c));
    OnCpu(rows, threads, [&] {
      cuda::rmsnorm::ForwardKernel<cuda::bf16>(x.data(), w.data(), 1e-5, static_cast<cuda::bf16*>(y_dev.raw()),
                                               rstd_dev.data<float>(), c);
    });
    OnCpu(rows, threads, [&] {
      cuda::rmsnorm::BackwardDxKernel<cuda::bf16>(dy.data(), x.data(), w.data(), rstd_dev.data<float>(),
                                                  static_cast<cuda::bf16*>(dx_dev.raw()), c);
    });
    OnCpu(dim3(1, 1), dim3(cuda::kThreads), [&] {
      cuda::rmsnorm::DwPartials<cuda::bf16>(dy.data(), x.data(), rstd_dev.data<float>(), n, c, n,
                                            partial.data<float>());
    });
    OnCpu(dim3(1), dim3(cuda::kThreads),
          [&] { cuda::FinishColumnSums<float, float>(partial.data<float>(), 1, c, dw_dev.data<float>()); });
    EXPECT_LT(Error(AsF64(y_dev), y), tolerance);
    EXPECT_LT(Error(AsF64(rstd_dev), rstd), tolerance);
    EXPECT_LT(Error(AsF64(dx_dev), dx), tolerance);
    EXPECT_LT(Error(AsF64(dw_dev), dw), tolerance);
  }
  {
    const int64_t n = 3, v = 50;
    Bf16 z = ToBf16(Random({n, v}, 4));
    Tensor targets = Tensor::Zeros({n}, DType::kI32).value(), lse = Random({n}, 5), dz = New({n, v});
    const int32_t ids[n] = {0, 49, 7};
    std::copy(ids, ids + n, targets.data<int32_t>());
    ASSERT_TRUE(CrossEntropyBackward(z.f64, targets, 0, lse, 0.5, dz).ok());
    Tensor lse_f32 = lse.To(Device::kCpu, DType::kF32).value(), dz_dev = New({n, v}, DType::kBF16);
    OnCpu(dim3(1), dim3(cuda::kThreads), [&] {
      cuda::cross_entropy::BackwardKernel<cuda::bf16>(z.data(), targets.data<int32_t>(), 0, lse_f32.data<float>(), 0.5,
                                                      static_cast<cuda::bf16*>(dz_dev.raw()), n, v);
    });
    EXPECT_LT(Error(AsF64(dz_dev), dz), tolerance);
  }
  {
    const int64_t n = 4, rows = 3, d = 40;
    Tensor tokens = Tensor::Zeros({n}, DType::kI32).value();
    const int32_t ids[n] = {1, 2, 1, 0};
    std::copy(ids, ids + n, tokens.data<int32_t>());
    Bf16 dout = ToBf16(Random({n, d}, 6));
    Tensor dtable = New({rows, d});
    ASSERT_TRUE(EmbeddingBackward(tokens, dout.f64, dtable).ok());
    Tensor dtable_dev = New({rows, d}, DType::kF32);
    const cuda::embedding::Segments seg = cuda::embedding::GroupByRow(tokens.data<int32_t>(), n, rows, 0);
    const int64_t segments = int64_t(seg.rows.size());
    OnCpu(dim3(cuda::GridFor(segments * d)), dim3(cuda::kThreads), [&] {
      cuda::embedding::BackwardKernel<cuda::bf16, float>(seg.order.data(), seg.begin.data(), seg.rows.data(),
                                                         dout.data(), dtable_dev.data<float>(), segments, d);
    });
    EXPECT_LT(Error(AsF64(dtable_dev), dtable), tolerance);
  }
  {
    const int64_t b = 1, t = 20, h = 2, hk = 1, dqk = 12, dv = 8;  // widths not multiples of 16: SIMT
    const double scale = 0.3;
    const KvGroups groups{2, 0};
    Bf16 q = ToBf16(Random({b, t, h, dqk}, 7)), k = ToBf16(Random({b, t, hk, dqk}, 8));
    Bf16 v = ToBf16(Random({b, t, hk, dv}, 9));
    Tensor o = New({b, t, h, dv}), lse = New({b, h, t});
    ASSERT_TRUE(CausalAttentionForward(q.f64, k.f64, v.f64, scale, o, lse, groups).ok());
    const cuda::flash::Dims dims{b, t, h, hk, dqk, dv, groups.group, groups.q_head_offset, float(scale)};
    Tensor o_dev = New({b, t, h, dv}, DType::kBF16), lse_dev = New({b, h, t}, DType::kF32);
    const dim3 blocks(unsigned((t + cuda::simt::kBQ - 1) / cuda::simt::kBQ), unsigned(h), unsigned(b));
    OnCpuShared(
        blocks, dim3(cuda::simt::kBlockThreads), cuda::simt::ForwardBytes<float>(dims), [&](unsigned char* smem) {
          cuda::simt::Forward<cuda::bf16>(smem, q.data(), k.data(), v.data(), static_cast<cuda::bf16*>(o_dev.raw()),
                                          lse_dev.data<float>(), dims, float(scale));
        });
    EXPECT_LT(Error(AsF64(o_dev), o), tolerance);
    EXPECT_LT(Error(AsF64(lse_dev), lse), tolerance);
  }
}

}  // namespace
}  // namespace lrkv
