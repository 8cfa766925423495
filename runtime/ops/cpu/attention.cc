// CPU causal attention that keeps no (T, T) matrix: forward computes one query row's scores at a
// time in a per-thread buffer and saves only the row's log-sum-exp; backward recomputes the row's
// probabilities from q, k and that log-sum-exp (FlashAttention-2's scheme, a row at a time), then
// applies the softmax Jacobian. Only the causal triangle is computed.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/ops/attention.h"
#include "runtime/ops/cpu/kernels.h"

namespace lrkv::cpu {
namespace {

template <typename T>
T Dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <typename T>
absl::Status Forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o, Tensor& lse,
                     KvGroups groups) {
  const int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), hk = k.dim(2), dqk = q.dim(3), dv = v.dim(3);
  const int64_t tk = k.dim(1), past = tk - t;  // decoding: the queries are the last t of tk positions
  const int64_t group = groups.group, offset = groups.q_head_offset;
  const T *qs = q.data<T>(), *ks = k.data<T>(), *vs = v.data<T>();
  T *os = o.data<T>(), *ls = lse.data<T>();  // lse has T's precision (LseDType)
  const T sc = static_cast<T>(scale);
#pragma omp parallel
  {
    std::vector<T> row(tk);  // one query row's scores, then probabilities
#pragma omp for collapse(3) schedule(dynamic, 4)
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t i = 0; i < t; ++i) {
        const int64_t g = (hi + offset) / group;
        const T* qi = qs + ((bi * t + i) * h + hi) * dqk;
        T* p = row.data();
        const int64_t last = past + i;  // the query's own position
        T m = -INFINITY;
        for (int64_t j = 0; j <= last; ++j) {
          p[j] = sc * Dot(qi, ks + ((bi * tk + j) * hk + g) * dqk, dqk);
          m = std::max(m, p[j]);
        }
        T sum = 0;
        for (int64_t j = 0; j <= last; ++j) sum += (p[j] = std::exp(p[j] - m));
        const T inv = T(1) / sum;
        ls[(bi * h + hi) * t + i] = m + std::log(sum);
        T* oi = os + ((bi * t + i) * h + hi) * dv;
        std::fill(oi, oi + dv, T(0));
        for (int64_t j = 0; j <= last; ++j) {
          p[j] *= inv;
          const T* vj = vs + ((bi * tk + j) * hk + g) * dv;
#pragma omp simd
          for (int64_t c = 0; c < dv; ++c) oi[c] += p[j] * vj[c];
        }
      }
  }
  return absl::OkStatus();
}

// Parallel over (batch, KV head): the query heads of one group add into the same dk, dv rows.
template <typename T>
absl::Status Backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse,
                      double scale, Tensor& dq, Tensor& dk, Tensor& dv, KvGroups groups) {
  const int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), hk = k.dim(2), dqk = q.dim(3), dvd = v.dim(3);
  const int64_t group = groups.group, offset = groups.q_head_offset;
  const T *qs = q.data<T>(), *ks = k.data<T>(), *vs = v.data<T>(), *ls = lse.data<T>(), *dos = dout.data<T>();
  T *dqs = dq.data<T>(), *dks = dk.data<T>(), *dvs = dv.data<T>();
  const T sc = static_cast<T>(scale);
#pragma omp parallel for collapse(2)
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t g = 0; g < hk; ++g) {
      std::vector<T> ds(t), row(t);
      for (int64_t j = 0; j < t; ++j) {
        std::fill_n(dks + ((bi * t + j) * hk + g) * dqk, dqk, T(0));
        std::fill_n(dvs + ((bi * t + j) * hk + g) * dvd, dvd, T(0));
      }
      // The local query heads of group g.
      const int64_t first = std::max<int64_t>(0, g * group - offset), last = std::min(h, (g + 1) * group - offset);
      for (int64_t hi = first; hi < last; ++hi)
        for (int64_t i = 0; i < t; ++i) {
          const T* doi = dos + ((bi * t + i) * h + hi) * dvd;
          const T* qi = qs + ((bi * t + i) * h + hi) * dqk;
          // The row's probabilities again, from the saved log-sum-exp.
          T* p = row.data();
          const T lse_i = ls[(bi * h + hi) * t + i];
          for (int64_t j = 0; j <= i; ++j) p[j] = std::exp(sc * Dot(qi, ks + ((bi * t + j) * hk + g) * dqk, dqk) - lse_i);
          T pdp = 0;  // sum_j p_j dp_j
          for (int64_t j = 0; j <= i; ++j) {
            ds[j] = Dot(doi, vs + ((bi * t + j) * hk + g) * dvd, dvd);
            pdp += p[j] * ds[j];
          }
          T* dqi = dqs + ((bi * t + i) * h + hi) * dqk;
          std::fill_n(dqi, dqk, T(0));
          for (int64_t j = 0; j <= i; ++j) {
            const T dsj = p[j] * (ds[j] - pdp) * sc;
            const T* kj = ks + ((bi * t + j) * hk + g) * dqk;
            T* dkj = dks + ((bi * t + j) * hk + g) * dqk;
            T* dvj = dvs + ((bi * t + j) * hk + g) * dvd;
#pragma omp simd
            for (int64_t c = 0; c < dqk; ++c) {
              dqi[c] += dsj * kj[c];
              dkj[c] += dsj * qi[c];
            }
#pragma omp simd
            for (int64_t c = 0; c < dvd; ++c) dvj[c] += p[j] * doi[c];
          }
        }
    }
  return absl::OkStatus();
}

}  // namespace

absl::Status CausalAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, Tensor& o,
                                    Tensor& lse, KvGroups groups) {
  LRKV_CPU_FLOAT_DISPATCH(q.dtype(), Forward, q, k, v, scale, o, lse, groups);
}
absl::Status CausalAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& lse, double scale, Tensor& dq, Tensor& dk, Tensor& dv,
                                     KvGroups groups) {
  LRKV_CPU_FLOAT_DISPATCH(q.dtype(), Backward, dout, q, k, v, lse, scale, dq, dk, dv, groups);
}

}  // namespace lrkv::cpu
