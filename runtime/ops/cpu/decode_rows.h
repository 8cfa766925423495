// The row loop of a one-query decoding attention in which few query heads read each KV head (MHA's
// 1, GQA's 2 or 3: attention.cc): a chunk's scores a key row at a time, then its outputs a few value
// rows at a time, both in the cache's memory order.
//   - Scores: the query heads of one KV head take their dots with that key row together, so each
//     key vector is loaded once for all of them, two accumulators per dot so that no chain of FMAs
//     waits on the one before. (Per query head with one `omp simd` sum the dots were chains of
//     dependent adds, each ending in a scalar horizontal sum.)
//   - Outputs: o_i += sum over kValueRows rows of p v, each o vector loaded and stored once per
//     kValueRows rows instead of once per row.
// GQA at 16 sequences of 16k positions (4 KV heads, 12 query heads of 128): 49.2 to 56.9 ms against
// 56.1 to 70.5 per head (best of 12, in-process alternation, four runs; README "On an AVX2
// machine" has the decode benchmark's figures).
#pragma once

#include <algorithm>
#include <cstdint>

#include "runtime/ops/cpu/simd_vec.h"

namespace lrkv::cpu {

constexpr int64_t kValueRows = 4;  // value rows per pass over the outputs

// out[n * out_stride] = scale * q_n . k for the N query rows q_n = q + n * dqk.
template <typename T, int N>
void DotsSharingKey(const T* k, const T* q, int64_t dqk, T scale, T* out, int64_t out_stride) {
  constexpr int64_t kLanes = kSimdLanes<T>;
  SimdVec<T> a[N], b[N];
  for (int n = 0; n < N; ++n) a[n] = SimdVec<T>{}, b[n] = SimdVec<T>{};
  int64_t e = 0;
  for (; e + 2 * kLanes <= dqk; e += 2 * kLanes) {
    const SimdVec<T> k0 = LoadVec(k + e), k1 = LoadVec(k + e + kLanes);
    for (int n = 0; n < N; ++n) a[n] += LoadVec(q + n * dqk + e) * k0, b[n] += LoadVec(q + n * dqk + e + kLanes) * k1;
  }
  for (int n = 0; n < N; ++n) {
    T sum = SumVec<T>(a[n] + b[n]);
    for (int64_t f = e; f < dqk; ++f) sum += q[n * dqk + f] * k[f];
    out[n * out_stride] = scale * sum;
  }
}

// The scores of query heads [first, last) (rows of q, dqk wide) against one key row k: s[i * ld]
// for head i, three heads at a time.
template <typename T>
void ScoresOfKeyRow(const T* k, const T* q, int64_t first, int64_t last, int64_t dqk, T scale, T* s, int64_t ld) {
  int64_t i = first;
  for (; i + 3 <= last; i += 3) DotsSharingKey<T, 3>(k, q + i * dqk, dqk, scale, s + i * ld, ld);
  if (last - i == 2) DotsSharingKey<T, 2>(k, q + i * dqk, dqk, scale, s + i * ld, ld);
  if (last - i == 1) DotsSharingKey<T, 1>(k, q + i * dqk, dqk, scale, s + i * ld, ld);
}

// o (dv) += sum over the kValueRows rows r of p[r] v[r * ldv + :].
template <typename T>
void AddValueRows(const T* p, const T* v, int64_t ldv, int64_t dv, T* o) {
  static_assert(kValueRows == 4, "four rows, as written out below");
  constexpr int64_t kLanes = kSimdLanes<T>;
  const T p0 = p[0], p1 = p[1], p2 = p[2], p3 = p[3];
  const T *v0 = v, *v1 = v + ldv, *v2 = v + 2 * ldv, *v3 = v + 3 * ldv;
  int64_t e = 0;
  for (; e + kLanes <= dv; e += kLanes) {
    const SimdVec<T> sum01 = p0 * LoadVec(v0 + e) + p1 * LoadVec(v1 + e);
    const SimdVec<T> sum23 = p2 * LoadVec(v2 + e) + p3 * LoadVec(v3 + e);
    StoreVec(o + e, LoadVec(o + e) + (sum01 + sum23));
  }
  for (; e < dv; ++e) o[e] += (p0 * v0[e] + p1 * v1[e]) + (p2 * v2[e] + p3 * v3[e]);
}

}  // namespace lrkv::cpu
