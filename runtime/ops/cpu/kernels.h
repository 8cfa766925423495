// The CPU backend's kernels, one source per op (ops/cpu/<op>.cc), each reached through the CPU
// table (ops/cpu/backend.cc), not called directly: the launchers in ops/<op>.h check the arguments
// first. Templated on f32/f64 inside each source (LRKV_CPU_FLOAT_DISPATCH), OpenMP-parallel.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/dtype.h"
#include "runtime/ops/activation.h"     // Activation
#include "runtime/ops/attention.h"      // KvGroups
#include "runtime/ops/gemm.h"           // GemmArgs
#include "runtime/ops/optimizer_ops.h"  // AdamWStep
#include "runtime/tensor.h"

namespace lrkv {
struct Backend;
}  // namespace lrkv

namespace lrkv::cpu {

// This backend's table, filled in ops/cpu/backend.cc; reached through BackendOf (ops/backend.h).
const Backend& Table();

// gemm.h
absl::Status Gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& args);
// embedding.h
absl::Status EmbeddingForward(const Tensor& tokens, const Tensor& table, Tensor& out, int64_t row_begin);
absl::Status EmbeddingBackward(const Tensor& tokens, const Tensor& dout, Tensor& dtable, int64_t row_begin);
// rmsnorm.h
absl::Status RmsNormForward(const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd);
absl::Status RmsNormBackward(const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd,
                             Tensor& dx, Tensor* dw);
// layernorm.h
absl::Status LayerNormForward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                              Tensor& mean, Tensor& rstd);
absl::Status LayerNormBackward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                               const Tensor& rstd, Tensor& dx, Tensor& dw, Tensor& db);
// rope.h: direction +1 forward, -1 backward
absl::Status Rope(const Tensor& x, int64_t rope_dims, double theta, double direction, int64_t first_position,
                  Tensor& y);
// activation.h
absl::Status ActivationForward(Activation act, const Tensor& x, Tensor& y);
absl::Status ActivationBackward(Activation act, const Tensor& dy, const Tensor& x, Tensor& dx);
absl::Status SwiGluForward(const Tensor& gate, const Tensor& up, Tensor& y);
absl::Status SwiGluBackward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);
// add.h
absl::Status Add(const Tensor& a, const Tensor& b, Tensor& out);
// cross_entropy.h
absl::Status LogitRowMax(const Tensor& logits, Tensor& max);
absl::Status CrossEntropyPartialSums(const Tensor& logits, const Tensor& targets, int64_t col_begin,
                                     const Tensor& max, Tensor& sums);
absl::Status CrossEntropyBackward(const Tensor& logits, const Tensor& targets, int64_t col_begin, const Tensor& lse,
                                  double scale, Tensor& dlogits);
// attention.h: groups resolved by the launcher (group > 0)
absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& lse, KvGroups groups);
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& lse, double scale, Tensor& dq, Tensor& dk, Tensor& dv,
                                     KvGroups groups);
// optimizer_ops.h
absl::Status SumSquares(const Tensor& x, double* out);
absl::Status Scale(Tensor& x, double factor);
absl::Status AdamWUpdate(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s);
// head_slice.h
absl::Status CopyToHeadSlice(const Tensor& src, int64_t offset, Tensor& dst);
absl::Status ReduceFromHeadSlice(const Tensor& ddst, int64_t offset, Tensor& dsrc);

}  // namespace lrkv::cpu

// Inside a CPU kernel file: instantiate the kernel template for the tensor's floating dtype.
#define LRKV_CPU_FLOAT_DISPATCH(dtype, kernel, ...)                                         \
  switch (dtype) {                                                                          \
    case ::lrkv::DType::kF32:                                                               \
      return kernel<float>(__VA_ARGS__);                                                    \
    case ::lrkv::DType::kF64:                                                               \
      return kernel<double>(__VA_ARGS__);                                                   \
    default:                                                                                \
      return absl::UnimplementedError(                                                      \
          absl::StrCat(#kernel, ": dtype ", ::lrkv::DTypeName(dtype), " not supported on cpu")); \
  }
