// A linear weight repacked for products with few rows, as decoding a batch makes them: y (N, out) =
// x (N, in) W for N from kPackedMinRows to kPackedMaxRows. Library GEMMs pack W afresh on every call
// and then use each packed panel for those few rows only, so the packing costs as much as the
// product: oneDNN's sgemm ran 16 x 1536 x 6144 at 47-75 GFLOP/s on a Zen 3 (AVX2), against 125-150
// through this layout, which a decoding model makes once (model/parameter.h, Parameter::packed).
//
// The layout: (panels, in, P), panel p holding columns [p P, (p + 1) P) of W row after row, zeros
// past `out`. The product computes y^T one panel at a time, P rows of W^T by x^T as a register
// tile (ops/cpu/register_tile_gemm.h), so W streams from memory once, in order, whatever N.
// CPU only: the CUDA backend answers Unimplemented, and PackedLinearSuits is false there.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/flop_counter.h"
#include "runtime/tensor.h"

namespace lrkv {

// Columns per panel: the CPU register tile's rows (register_tile_gemm.h kTileRowsWide; the CPU
// kernel checks they agree). One pass of 6 rows on AVX2 ran 15% faster than two over panels of 12.
#if defined(__AVX512F__)
constexpr int64_t kPackedPanelColumns = 12;
#else
constexpr int64_t kPackedPanelColumns = 6;
#endif
// Below 4 rows the padding to a whole vector of rows is most of the work (1 row: 1.8 against
// oneDNN's 1.5 ms at 1536 x 6144; 4 rows: 1.8 against 2.3); at 64 rows still 1.7x oneDNN's rate.
constexpr int64_t kPackedMinRows = 4;
constexpr int64_t kPackedMaxRows = 64;

// Whether x (rows, in) times a weight on `device` in `dtype` goes through the packed layout.
bool PackedLinearSuits(Device device, DType dtype, int64_t rows);

// The packed copy of w (in, out), or with `transposed` of w stored (out, in) as an LM head is: the
// same layout either way. On w's device in its dtype.
absl::StatusOr<Tensor> PackLinearWeight(const Tensor& w, bool transposed = false);

// y = x W from W's packed copy (PackLinearWeight): x (N, in) and y (N, out), any shapes of N * in
// and N * out elements as for LinearForward.
absl::Status PackedLinearForward(const Tensor& x, const Tensor& packed, Tensor& y, FlopCategory category);

}  // namespace lrkv
