// CPU kernels of packed_linear.h. The product works on y^T = W^T x^T: x^T (in, N padded to whole
// vectors) is made once per call; each task takes a panel, whose P rows of W^T (stored (in, P): A
// read transposed, Tile::a_step P) times x^T give a (P, N) tile of y^T in registers, copied into its
// P columns of y. Each entry of W is loaded once and broadcast against every row of x.
#include <algorithm>
#include <vector>

#include "runtime/ops/cpu/kernels.h"
#include "runtime/ops/cpu/register_tile_gemm.h"
#include "runtime/ops/packed_linear.h"

namespace lrkv::cpu {
namespace {

constexpr int64_t kPanel = kPackedPanelColumns;
static_assert(kPanel == kTileRowsWide, "a panel is one register block of rows of W^T");

template <typename T>
absl::Status Pack(const Tensor& w, bool transposed, Tensor& packed) {
  const int64_t in = packed.dim(1), out = w.numel() / in, panels = packed.dim(0);
  const T* src = w.data<T>();  // (in, out), or transposed (out, in)
  const int64_t row_step = transposed ? 1 : out, col_step = transposed ? in : 1;  // W[k][col] at k row_step + col col_step
  T* dst = packed.data<T>();   // (panels, in, P)
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t k = 0; k < in; ++k)
      for (int64_t j = 0; j < kPanel; ++j) {
        const int64_t col = p * kPanel + j;
        dst[(p * in + k) * kPanel + j] = col < out ? src[k * row_step + col * col_step] : T(0);
      }
  return absl::OkStatus();
}

template <typename T>
absl::Status Forward(const Tensor& x, const Tensor& packed, Tensor& y) {
  const int64_t in = packed.dim(1), panels = packed.dim(0), n = x.numel() / in, out = y.numel() / n;
  const int64_t padded = RoundUpToVectors<T>(n);
  std::vector<T> xt(size_t(in * padded), T(0)), zero(size_t(padded), T(0));  // x^T (in, padded)
  ScaledTransposeInto(x.data<T>(), n, in, in, 1, T(1), padded, xt.data());
  const T* w = packed.data<T>();
  T* ys = y.data<T>();  // (n, out)
#pragma omp parallel
  {
    std::vector<T> yt(size_t(kPanel * padded));  // (P, padded): the panel's rows of y^T
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
      register_tile::Rows<T, kPanel>(
          Tile<T>{w + p * in * kPanel, 1, xt.data(), padded, zero.data(), 0, yt.data(), padded, padded, in, kPanel});
      const int64_t first = p * kPanel, cols = std::min(kPanel, out - first);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < cols; ++j) ys[i * out + first + j] = yt[j * padded + i];
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PackLinearWeight(const Tensor& w, bool transposed, Tensor& packed) {
  LRKV_CPU_FLOAT_DISPATCH(w.dtype(), Pack, w, transposed, packed);
}

absl::Status PackedLinearForward(const Tensor& x, const Tensor& packed, Tensor& y) {
  LRKV_CPU_FLOAT_DISPATCH(y.dtype(), Forward, x, packed, y);
}

}  // namespace lrkv::cpu
