// The row loop of a one-query decoding attention in which few query heads read each KV head (MHA's
// 1, GQA's 2 or 3: attention.cc): a chunk's scores four key rows at a time, then its outputs four
// value rows at a time, both in the cache's memory order.
//   - Scores: the query heads of one KV head take their dots with four key rows together, one
//     accumulator per dot (12 for GQA's 3 heads), so each key vector is loaded once for the heads
//     and each query vector once for the rows; a head's four sums are reduced together
//     (simd_vec.h's StoreSumsOfFour: three horizontal adds on AVX, where a dot at a time ended
//     each in a chain of shuffles and adds). Rows past the last four: a row at a time.
//   - Outputs: o_n += sum over four rows of p_n v for the heads n of one KV head, each value vector
//     loaded once for all of them and each o vector loaded and stored once per four rows.
// One Zen 3 core, a GQA chunk (64 positions, 4 KV heads, 12 query heads of 128) in L2: scores 38 to
// 48 GFLOP/s against 25 to 30 a row and a head group at a time, outputs 48 to 63 against 36 to 45.
// In-process alternation on both cores (README "On an AVX2 machine"): 4 sequences of 512 positions
// (8 MB, in the caches) 1.4 to 1.5x faster, MHA at 16 x 8192 2 to 8% faster; GQA at 16 x 16k
// (1 GB from memory) unchanged, reading 16 to 18 GB/s either way, where MHA reads 28 to 30.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "runtime/ops/cpu/simd_vec.h"

namespace lrkv::cpu {

// f(std::integral_constant<int, N>, i) for the heads [first, last): N = 3 heads from head i at a
// time, then the 2 or 1 left.
template <typename F>
void InThrees(int64_t first, int64_t last, F&& f) {
  int64_t i = first;
  for (; i + 3 <= last; i += 3) f(std::integral_constant<int, 3>{}, i);
  if (last - i == 2) f(std::integral_constant<int, 2>{}, i);
  if (last - i == 1) f(std::integral_constant<int, 1>{}, i);
}

// out[n * out_stride] = scale * q_n . k for the N query rows q_n = q + n * dqk (a chunk's last rows).
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

// out[n * out_stride + r] = scale * q_n . k_r for the N query rows q_n = q + n * dqk and four key
// rows k_r = k + r * ldk: each key vector loaded once for the N heads, each query vector once for
// the four rows, one accumulator per dot (4 N of them), the four sums of a head reduced together.
template <typename T, int N>
void DotsOfFourKeyRows(const T* k, int64_t ldk, const T* q, int64_t dqk, T scale, T* out, int64_t out_stride) {
  constexpr int64_t kLanes = kSimdLanes<T>;
  SimdVec<T> acc[N][4];
  for (int n = 0; n < N; ++n)
    for (int r = 0; r < 4; ++r) acc[n][r] = SimdVec<T>{};
  int64_t e = 0;
  for (; e + kLanes <= dqk; e += kLanes) {
    SimdVec<T> kr[4];
    for (int r = 0; r < 4; ++r) kr[r] = LoadVec(k + r * ldk + e);
    for (int n = 0; n < N; ++n) {
      const SimdVec<T> qn = LoadVec(q + n * dqk + e);
      for (int r = 0; r < 4; ++r) acc[n][r] += qn * kr[r];
    }
  }
  for (int n = 0; n < N; ++n) {
    T* o = out + n * out_stride;
    StoreSumsOfFour<T>(acc[n], scale, o);
    for (int64_t f = e; f < dqk; ++f)
      for (int r = 0; r < 4; ++r) o[r] += scale * q[n * dqk + f] * k[r * ldk + f];
  }
}

// The scores of query heads [first, last) against four key rows k + r * ldk: s[i * ld + r] for
// head i, three heads at a time.
template <typename T>
void ScoresOfFourKeyRows(const T* k, int64_t ldk, const T* q, int64_t first, int64_t last, int64_t dqk, T scale, T* s,
                         int64_t ld) {
  InThrees(first, last, [&](auto n, int64_t i) {
    DotsOfFourKeyRows<T, decltype(n)::value>(k, ldk, q + i * dqk, dqk, scale, s + i * ld, ld);
  });
}

// The scores of query heads [first, last) (rows of q, dqk wide) against one key row k: s[i * ld]
// for head i, three heads at a time.
template <typename T>
void ScoresOfKeyRow(const T* k, const T* q, int64_t first, int64_t last, int64_t dqk, T scale, T* s, int64_t ld) {
  InThrees(first, last, [&](auto n, int64_t i) {
    DotsSharingKey<T, decltype(n)::value>(k, q + i * dqk, dqk, scale, s + i * ld, ld);
  });
}

// For the N heads n of one KV head: o_n (dv) += sum over four rows r of p[n * ld + r] v[r * ldv + :],
// o_n = o + n * dv: each value vector loaded once for the N heads.
template <typename T, int N>
void AddFourValueRows(const T* p, int64_t ld, const T* v, int64_t ldv, int64_t dv, T* o) {
  constexpr int64_t kLanes = kSimdLanes<T>;
  T w[N][4];
  for (int n = 0; n < N; ++n)
    for (int r = 0; r < 4; ++r) w[n][r] = p[n * ld + r];
  int64_t e = 0;
  for (; e + kLanes <= dv; e += kLanes) {
    SimdVec<T> vr[4];
    for (int r = 0; r < 4; ++r) vr[r] = LoadVec(v + r * ldv + e);
    for (int n = 0; n < N; ++n) {
      T* on = o + n * dv + e;
      StoreVec(on, LoadVec(on) + ((w[n][0] * vr[0] + w[n][1] * vr[1]) + (w[n][2] * vr[2] + w[n][3] * vr[3])));
    }
  }
  for (; e < dv; ++e)
    for (int n = 0; n < N; ++n)
      for (int r = 0; r < 4; ++r) o[n * dv + e] += w[n][r] * v[r * ldv + e];
}

// The outputs of query heads [first, last), o_i += sum over four value rows of p_i v: three heads
// at a time.
template <typename T>
void AddFourValueRowsToHeads(const T* p, int64_t ld, const T* v, int64_t ldv, int64_t first, int64_t last, int64_t dv,
                             T* o) {
  InThrees(first, last,
           [&](auto n, int64_t i) { AddFourValueRows<T, decltype(n)::value>(p + i * ld, ld, v, ldv, dv, o + i * dv); });
}

}  // namespace lrkv::cpu
