#include "runtime/ops/linear.h"

#include "runtime/ops/gemm.h"
#include "runtime/status.h"

namespace lrkv {
namespace {
absl::Status CheckLinear(const Tensor& x, const Tensor& w, const Tensor& y, const char* op) {
  LRKV_REQUIRE(w.rank() == 2, op, ": weight must be (in, out), got ", w.DebugString());
  LRKV_REQUIRE(w.dim(0) > 0 && x.numel() % w.dim(0) == 0, op, ": input ", x.DebugString(),
               " does not match weight ", w.DebugString());
  // Inputs and outputs are (N, in) and (N, out) matrices, whatever their tensor shapes, e.g.
  // (B, T, d) in and (B, T, H, d_h) out.
  LRKV_REQUIRE(y.defined() && y.numel() == x.numel() / w.dim(0) * w.dim(1), op,
               ": output ", y.DebugString(), " does not match input ", x.DebugString(), " and weight ",
               w.DebugString());
  return absl::OkStatus();
}
}  // namespace

absl::Status LinearForward(const Tensor& x, const Tensor& w, Tensor& y, FlopCategory category) {
  LRKV_TRY(CheckLinear(x, w, y, "LinearForward"));
  const int64_t in = w.dim(0), out = w.dim(1), n = x.numel() / in;
  return Gemm(x, w, y, GemmArgs::Dense(n, out, in), category);
}

absl::Status LinearBackward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor* dx, Tensor& dw,
                            FlopCategory category, bool accumulate_dx) {
  LRKV_TRY(CheckLinear(x, w, dy, "LinearBackward"));
  const int64_t in = w.dim(0), out = w.dim(1), n = x.numel() / in;
  if (dx != nullptr) {
    LRKV_REQUIRE(dx->numel() == x.numel(), "LinearBackward: dx ", dx->DebugString(), " vs x ",
                 x.DebugString());
    GemmArgs g = GemmArgs::Dense(n, in, out, /*trans_a=*/false, /*trans_b=*/true);
    g.beta = accumulate_dx ? 1.0 : 0.0;
    LRKV_TRY(Gemm(dy, w, *dx, g, category));
  }
  LRKV_REQUIRE(dw.shape() == w.shape(), "LinearBackward: dw ", dw.DebugString(), " vs w ", w.DebugString());
  GemmArgs g = GemmArgs::Dense(in, out, n, /*trans_a=*/true, /*trans_b=*/false);
  g.beta = 1.0;
  return Gemm(x, dy, dw, g, category);
}

}  // namespace lrkv
