// The CUDA backend's kernels, one source per op (ops/cuda/<op>.cu), each reached through the CUDA
// table (ops/cuda/backend.cc, built only with LRKV_HAVE_CUDA), not called directly: the launchers in
// ops/<op>.h check the arguments first. Plain C++ declarations, so host code may include this.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/ops/activation.h"     // Activation
#include "runtime/ops/attention.h"      // KvGroups
#include "runtime/ops/gemm.h"           // GemmArgs
#include "runtime/ops/optimizer_ops.h"  // AdamWStep
#include "runtime/tensor.h"

namespace lrkv {
struct Backend;
}  // namespace lrkv

namespace lrkv::cuda {

// This backend's table, filled in ops/cuda/backend.cc (CUDA builds only); reached through
// BackendOf (ops/backend.h).
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

}  // namespace lrkv::cuda
