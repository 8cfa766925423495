// The CUDA backend's tensor-core attention, forward and backward (runtime/ops/cuda/flash_attention.cuh),
// run on the CPU under tests/testing/cuda_on_cpu.h, against the CPU backend's attention in float64 on
// the same bf16-rounded inputs. On a GPU the cross-backend op test (backend_ops_test) checks the same kernel
// through the CUDA backend; this test runs its code in every build, GPU or not: its indexing, causal
// masking, online softmax, gradients, GQA/TP head mapping (the KV heads no local query head reads get
// zero gradients), partial tiles, synchronisation and the alignment rules of its WMMA loads and stores.
#include "tests/testing/cuda_on_cpu.h"
// (The kernel's header after the emulation, which it then uses instead of CUDA's headers.)
#include "runtime/ops/cuda/flash_attention.cuh"

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/ops/attention.h"
#include "tests/testing/tensor_testing.h"

namespace lrkv {
namespace {

namespace flash = cuda::flash;
using testing::At;

struct Case {
  const char* name;
  int64_t b, t, h, hk, dqk, dv;
  KvGroups groups;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Uniform values in [-range, range), rounded to bf16: the kernel's inputs and, as float64, the
// reference's.
struct Bf16Input {
  std::vector<__nv_bfloat16> bits;
  Tensor f64;
};
Bf16Input Input(const Shape& shape, uint64_t seed, double range) {
  Bf16Input in{{}, testing::Random(shape, seed, DType::kF64)};
  for (int64_t i = 0; i < in.f64.numel(); ++i) {
    in.bits.push_back(__float2bfloat16_rn(float(range * At(in.f64, i))));
    testing::Set(in.f64, i, __bfloat162float(in.bits.back()));
  }
  return in;
}
std::vector<__nv_bfloat16> Poisoned(const Tensor& like) {
  return std::vector<__nv_bfloat16>(like.numel(), __float2bfloat16_rn(NAN));
}

// max |got - reference| / max |reference|, the cross-backend test's measure (infinite on a NaN).
template <typename T, typename ToDouble>
double RelativeError(const std::vector<T>& got, const Tensor& reference, ToDouble to_double) {
  double err = 0, scale = 1e-30;
  for (int64_t i = 0; i < reference.numel(); ++i) {
    const double x = to_double(got[i]);
    err = std::isnan(x) ? INFINITY : std::max(err, std::abs(x - At(reference, i)));
    scale = std::max(scale, std::abs(At(reference, i)));
  }
  return err / scale;
}
double FromBf16(__nv_bfloat16 x) { return __bfloat162float(x); }
double FromFloat(float x) { return x; }

class FlashAttentionOnCpu : public ::testing::TestWithParam<Case> {};

// Forward, then backward from the forward's log-sum-exp, against the CPU backend's forward and
// backward in float64 on the same bf16 values. bf16 rounds the probabilities and dS fed to the GEMMs
// and every output: relative errors of a few 2^-8 at most, under the cross-backend test's 1e-2.
TEST_P(FlashAttentionOnCpu, EqualsCpuBackend) {
  const Case c = GetParam();
  ASSERT_TRUE(flash::Supports(c.dqk, c.dv, flash::kSm90SharedBytes));
  // Scores of several units, so that the softmax is far from uniform and the rescaling matters.
  const Bf16Input q = Input({c.b, c.t, c.h, c.dqk}, 1, 2.0), k = Input({c.b, c.t, c.hk, c.dqk}, 2, 2.0);
  const Bf16Input v = Input({c.b, c.t, c.hk, c.dv}, 3, 1.0), dout = Input({c.b, c.t, c.h, c.dv}, 4, 1.0);
  const double scale = 1.0 / std::sqrt(double(c.dqk));
  Tensor o_ref = Tensor::Empty({c.b, c.t, c.h, c.dv}, DType::kF64).value();
  Tensor lse_ref = Tensor::Empty({c.b, c.h, c.t}, DType::kF64).value();
  ASSERT_TRUE(CausalAttentionForward(q.f64, k.f64, v.f64, scale, o_ref, lse_ref, c.groups).ok());
  Tensor dq_ref = testing::ZerosLike(q.f64), dk_ref = testing::ZerosLike(k.f64), dv_ref = testing::ZerosLike(v.f64);
  ASSERT_TRUE(
      CausalAttentionBackward(dout.f64, q.f64, k.f64, v.f64, lse_ref, scale, dq_ref, dk_ref, dv_ref, c.groups).ok());

  const int64_t group = c.groups.group == 0 ? c.h / c.hk : c.groups.group;  // as the op resolves it
  const flash::Dims d{c.b, c.t, c.h, c.hk, c.dqk, c.dv, group, c.groups.q_head_offset, float(scale)};
  const unsigned row_blocks = unsigned((c.t + flash::kBlockRows - 1) / flash::kBlockRows);
  std::vector<__nv_bfloat16> o = Poisoned(o_ref), dq = Poisoned(dq_ref), dk = Poisoned(dk_ref), dv = Poisoned(dv_ref);
  std::vector<float> lse(lse_ref.numel(), NAN), dsum(lse_ref.numel(), NAN);
  cuda_on_cpu::Launch(dim3(row_blocks, unsigned(c.h), unsigned(c.b)), dim3(flash::kThreads),
                      flash::ForwardTiles(nullptr, d).arena.bytes(), flash::Forward, q.bits.data(), k.bits.data(),
                      v.bits.data(), o.data(), lse.data(), d);
  cuda_on_cpu::Launch(dim3(row_blocks, unsigned(c.h), unsigned(c.b)), dim3(flash::kThreads),
                      flash::QueryGradTiles(nullptr, d).arena.bytes(), flash::BackwardQueries, dout.bits.data(),
                      q.bits.data(), k.bits.data(), v.bits.data(), lse.data(), dsum.data(), dq.data(), d);
  cuda_on_cpu::Launch(dim3(row_blocks, unsigned(c.hk), unsigned(c.b)), dim3(flash::kThreads),
                      flash::KeyGradTiles(nullptr, d).arena.bytes(), flash::BackwardKeys, dout.bits.data(),
                      q.bits.data(), k.bits.data(), v.bits.data(), lse.data(), dsum.data(), dk.data(), dv.data(), d);

  EXPECT_LT(RelativeError(o, o_ref, FromBf16), 1e-2) << c.name << " o";
  EXPECT_LT(RelativeError(lse, lse_ref, FromFloat), 1e-5) << c.name << " log-sum-exp";
  EXPECT_LT(RelativeError(dq, dq_ref, FromBf16), 1e-2) << c.name << " dq";
  EXPECT_LT(RelativeError(dk, dk_ref, FromBf16), 1e-2) << c.name << " dk";
  EXPECT_LT(RelativeError(dv, dv_ref, FromBf16), 1e-2) << c.name << " dv";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FlashAttentionOnCpu,
    ::testing::Values(Case{"one_row", 1, 1, 1, 1, 16, 16, {}},            // a single query and key
                      Case{"gqa_partial_tile", 2, 100, 4, 2, 32, 16, {}},  // Dqk != Dv, rows past T
                      Case{"mqa_three_blocks", 1, 130, 3, 1, 48, 32, {}},  // blocks with 1, 2 and 3 key tiles
                      Case{"tp_offset", 1, 70, 2, 3, 16, 16, {2, 3}},      // local heads 0, 1 read KV heads 1, 2
                      Case{"mla_widths", 1, 80, 2, 2, 192, 128, {}}),      // MLA's d_h + d_R and d_h
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(CudaOnCpu, WmmaRefusesMisalignedTiles) {
  // 16 bf16 = 32 bytes a row; starting one element in, the tile is not on a 256-bit boundary.
  EXPECT_DEATH(
      {
        cuda_on_cpu::Launch(dim3(1), dim3(32), 1024, [](unsigned char* smem) {
          nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> a;
          nvcuda::wmma::load_matrix_sync(a, reinterpret_cast<__nv_bfloat16*>(smem) + 1, 16);
        });
      },
      "not 256-bit aligned");
}

TEST(CudaOnCpu, WmmaRefusesLanesThatDisagree) {
  // Lane 5 loads another tile than its warp: a warp-collective's arguments must be uniform.
  EXPECT_DEATH(
      {
        cuda_on_cpu::Launch(dim3(1), dim3(32), 2048, [](unsigned char* smem) {
          nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> a;
          const int lane = int(threadIdx.x);
          nvcuda::wmma::load_matrix_sync(a, reinterpret_cast<__nv_bfloat16*>(smem) + (lane == 5 ? 256 : 0), 16);
          __syncwarp();
        });
      },
      "lanes of a warp made different calls");
}

TEST(CudaOnCpu, ShufflesAndBarriersFollowCuda) {
  std::vector<float> out(64);
  cuda_on_cpu::Launch(dim3(1), dim3(64), 64 * sizeof(float), [&out](unsigned char* smem) {
    float* shared = reinterpret_cast<float*>(smem);
    const int t = int(threadIdx.x);
    shared[t] = float(t);
    __syncthreads();
    // The block's other warp wrote its half before the barrier; lane ^ 1's value comes by shuffle.
    out[t] = shared[63 - t] + __shfl_xor_sync(0xffffffffu, float(t), 1);
  });
  for (int t = 0; t < 64; ++t) EXPECT_EQ(out[t], float(63 - t) + float(t ^ 1)) << t;
}

}  // namespace
}  // namespace lrkv
