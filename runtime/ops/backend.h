// How an op's launcher reaches its kernels: one table of kernel pointers per backend. An op is one
// header with its launcher (ops/<op>.h, ops/<op>.cc), one kernel source per backend (ops/cpu/<op>.cc,
// ops/cuda/<op>.cu), and one line in the list below, from which each backend's declarations and
// table are made. The launcher checks shapes, dtypes and devices once, then calls the entry of its
// tensors' device through LRKV_RUN_KERNEL. A table the build lacks (CUDA without the toolkit) has
// only null entries, which answer Unimplemented, never a crash.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/ops/activation.h"     // Activation
#include "runtime/ops/attention.h"      // KvGroups
#include "runtime/ops/factored_decode_attention.h"  // KeyTransform
#include "runtime/ops/gemm.h"           // GemmArgs
#include "runtime/ops/optimizer_ops.h"  // AdamWStep
#include "runtime/tensor.h"

// Every kernel a backend provides, as X(member, Function, parameters), grouped by the op header it
// belongs to. Each returns absl::Status. The struct below, each backend's declarations (its
// kernels.h: `absl::Status Function parameters;` in its namespace) and its table (its backend.cc:
// `member = Function`) all expand this list, so a kernel is named here once; a backend that lacks
// one fails to link.
#define LRKV_BACKEND_KERNELS(X)                                                                              \
  /* gemm.h */                                                                                               \
  X(gemm, Gemm, (const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& args))                               \
  /* embedding.h; row_begin: the first vocabulary row of this rank's table */                                \
  X(embedding_forward, EmbeddingForward, (const Tensor& tokens, const Tensor& table, Tensor& out, int64_t row_begin))          \
  X(embedding_backward, EmbeddingBackward, (const Tensor& tokens, const Tensor& dout, Tensor& dtable, int64_t row_begin))       \
  /* rmsnorm.h */                                                                                            \
  X(rms_norm_forward, RmsNormForward, (const Tensor& x, const Tensor* w, double eps, Tensor& y, Tensor& rstd))               \
  X(rms_norm_backward, RmsNormBackward,                                                                                       \
    (const Tensor& dy, const Tensor& x, const Tensor* w, const Tensor& rstd, Tensor& dx, Tensor* dw))        \
  /* layernorm.h */                                                                                          \
  X(layer_norm_forward, LayerNormForward, (const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,           \
                         Tensor& mean, Tensor& rstd))                                                        \
  X(layer_norm_backward, LayerNormBackward, (const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,            \
                          const Tensor& rstd, Tensor& dx, Tensor& dw, Tensor& db))                           \
  /* rope.h; one kernel for both passes: direction +1 forward, -1 backward */                                \
  X(rope, Rope,                                                                                              \
    (const Tensor& x, int64_t rope_dims, double theta, double direction, int64_t first_position, Tensor& y)) \
  /* activation.h */                                                                                         \
  X(activation_forward, ActivationForward, (Activation act, const Tensor& x, Tensor& y))                                        \
  X(activation_backward, ActivationBackward, (Activation act, const Tensor& dy, const Tensor& x, Tensor& dx))                    \
  X(swiglu_forward, SwiGluForward, (const Tensor& gate, const Tensor& up, Tensor& y))                                       \
  X(swiglu_backward, SwiGluBackward, (const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup))   \
  /* add.h */                                                                                                \
  X(add, Add, (const Tensor& a, const Tensor& b, Tensor& out))                                                    \
  /* cross_entropy.h */                                                                                      \
  X(logit_row_max, LogitRowMax, (const Tensor& logits, Tensor& max))                                                      \
  X(cross_entropy_partial_sums, CrossEntropyPartialSums, (const Tensor& logits, const Tensor& targets, int64_t col_begin,             \
                                 const Tensor& max, Tensor& sums))                                           \
  X(cross_entropy_backward, CrossEntropyBackward, (const Tensor& logits, const Tensor& targets, int64_t col_begin,                 \
                             const Tensor& lse, double scale, Tensor& dlogits))                              \
  /* attention.h; the launcher resolves groups (group > 0) */                                                \
  X(causal_attention_forward, CausalAttentionForward, (const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,   \
                               Tensor& lse, KvGroups groups))                                                \
  X(causal_attention_backward, CausalAttentionBackward, (const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,       \
                                const Tensor& lse, double scale, Tensor& dq, Tensor& dk, Tensor& dv,         \
                                KvGroups groups))                                                            \
  /* factored_decode_attention.h */                                                                          \
  X(factored_decode_attention, FactoredDecodeAttention, (const Tensor& q, const Tensor& k_shared,             \
    const Tensor& k_latent, const Tensor& bk, const Tensor& v_shared, const Tensor& v_latent,                \
    const KeyTransform& keys, double scale, Tensor& o, Tensor& lse))                                         \
  /* latent_decode_attention.h */                                                                            \
  X(latent_decode_attention, LatentDecodeAttention, (const Tensor& q, const std::vector<Tensor>& latents,      \
    const Tensor& rope, const Tensor* key_scales, const std::vector<int64_t>& firsts, double scale, Tensor& o, \
    Tensor& lse))                                                                                            \
  /* optimizer_ops.h */                                                                                      \
  X(sum_squares, SumSquares, (const Tensor& x, double* out))                                                             \
  X(scale, Scale, (Tensor& x, double factor))                                                                       \
  X(adamw_update, AdamWUpdate, (Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s))             \
  /* head_slice.h */                                                                                         \
  X(copy_to_head_slice, CopyToHeadSlice, (const Tensor& src, int64_t offset, Tensor& dst))                                    \
  X(reduce_from_head_slice, ReduceFromHeadSlice, (const Tensor& ddst, int64_t offset, Tensor& dsrc))            \
  /* cast.h */                                                                                               \
  X(cast, Cast, (const Tensor& src, Tensor& dst))                                                            \
  /* packed_linear.h; packed allocated by the launcher */                                                   \
  X(pack_linear_weight, PackLinearWeight, (const Tensor& w, bool transposed, Tensor& packed))                 \
  X(packed_linear_forward, PackedLinearForward, (const Tensor& x, const Tensor& packed, Tensor& y))

namespace lrkv {

// One backend's kernels: member `gemm` is `absl::Status (*gemm)(const Tensor& a, ...)`, null where
// the backend has no such kernel.
struct Backend {
  const char* name = "";  // "cpu", "cuda": for messages
#define LRKV_BACKEND_MEMBER_(member, function, params) absl::Status(*member) params = nullptr;
  LRKV_BACKEND_KERNELS(LRKV_BACKEND_MEMBER_)
#undef LRKV_BACKEND_MEMBER_
};

// The table of `device`'s backend; in a build without CUDA the CUDA table has only null entries.
const Backend& BackendOf(Device device);

// Calls backend(device).*member with args, or answers Unimplemented naming `op` and the backend
// when the entry is null. Use through LRKV_RUN_KERNEL.
template <typename Kernel, typename... Args>
absl::Status RunKernel(Device device, Kernel Backend::*member, const char* op, Args&&... args) {
  const Backend& backend = BackendOf(device);
  const Kernel kernel = backend.*member;
  if (kernel == nullptr) {
    return absl::UnimplementedError(absl::StrCat(op, ": no ", backend.name, " kernel in this build"));
  }
  const KernelScope inside;  // the kernel may touch its tensors' elements (tensor.h)
  return kernel(std::forward<Args>(args)...);
}

}  // namespace lrkv

// In a backend's namespace (ops/cpu/backend.cc, ops/cuda/backend.cc): `const Backend& Table()`, its
// table with every entry of the list set to that namespace's function.
#define LRKV_FILL_KERNEL_(member, function, params) b.member = function;
#define LRKV_DEFINE_BACKEND_TABLE(backend_name) \
  const Backend& Table() {                      \
    static const Backend table = [] {           \
      Backend b;                                \
      b.name = backend_name;                    \
      LRKV_BACKEND_KERNELS(LRKV_FILL_KERNEL_)   \
      return b;                                 \
    }();                                        \
    return table;                               \
  }

// In a launcher, after its checks: return LRKV_RUN_KERNEL(x.device(), rope, x, rope_dims, ...);
#define LRKV_RUN_KERNEL(device, member, ...) \
  ::lrkv::RunKernel((device), &::lrkv::Backend::member, #member, __VA_ARGS__)
