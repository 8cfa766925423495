#include "runtime/ops/packed_linear.h"

#include "runtime/ops/backend.h"
#include "runtime/ops/check.h"
#include "runtime/status.h"

namespace lrkv {

bool PackedLinearSuits(Device device, DType dtype, int64_t rows) {
  return device == Device::kCpu && (dtype == DType::kF32 || dtype == DType::kF64) && rows >= kPackedMinRows &&
         rows <= kPackedMaxRows;
}

absl::StatusOr<Tensor> PackLinearWeight(const Tensor& w, bool transposed) {
  LRKV_REQUIRE(w.defined() && w.rank() == 2, "PackLinearWeight: weight must be ", transposed ? "(out, in)" : "(in, out)",
               ", got ", w.DebugString());
  const int64_t in = w.dim(transposed ? 1 : 0), out = w.dim(transposed ? 0 : 1);
  const int64_t panels = (out + kPackedPanelColumns - 1) / kPackedPanelColumns;
  LRKV_TRY_ASSIGN(Tensor packed, Tensor::Empty({panels, in, kPackedPanelColumns}, w.dtype(), w.device()));
  LRKV_TRY(LRKV_RUN_KERNEL(w.device(), pack_linear_weight, w, transposed, packed));
  return packed;
}

absl::Status PackedLinearForward(const Tensor& x, const Tensor& packed, Tensor& y, FlopCategory category) {
  constexpr const char* op = "PackedLinearForward";
  LRKV_REQUIRE(packed.defined() && packed.rank() == 3 && packed.dim(2) == kPackedPanelColumns, op,
               ": packed must be (panels, in, ", kPackedPanelColumns, ") from PackLinearWeight, got ",
               packed.DebugString());
  const int64_t in = packed.dim(1);
  LRKV_REQUIRE(in > 0 && x.numel() % in == 0, op, ": input ", x.DebugString(), " does not match packed weight ",
               packed.DebugString());
  const int64_t n = x.numel() / in;
  LRKV_REQUIRE(n > 0 && y.defined() && y.numel() % n == 0, op, ": output ", y.DebugString(), " for ", n, " rows");
  const int64_t out = y.numel() / n;
  LRKV_REQUIRE(out > (packed.dim(0) - 1) * kPackedPanelColumns && out <= packed.dim(0) * kPackedPanelColumns, op,
               ": output ", y.DebugString(), " has ", out, " columns, packed weight ", packed.DebugString());
  LRKV_TRY(CheckSameDeviceAndDType(op, {&x, &packed, &y}));
  CountFlops(category, 2 * n * in * out);
  return LRKV_RUN_KERNEL(y.device(), packed_linear_forward, x, packed, y);
}

}  // namespace lrkv
