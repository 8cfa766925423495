// cuBLASLt's matmul calls on the CPU (cublaslt_on_cpu.h says what is checked and why). Each
// descriptor's state lives in a map keyed by the descriptor's address; the opaque structs are
// allocated only to have addresses of the library's types.
#include "tests/testing/cublaslt_on_cpu.h"

#include <cublasLt.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "runtime/dtype.h"

struct cublasLtContext {
  int unused = 0;
};

namespace lrkv::testing::cublaslt_on_cpu {
namespace {

struct Desc {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  int32_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
};

struct Layout {
  cudaDataType_t type;
  int64_t rows, cols, ld;
  int32_t batch = 1;
  int64_t stride = 0;
};

struct Preference {
  uint64_t workspace = 0;
  uint32_t align[4] = {256, 256, 256, 256};  // A, B, C, D: cuBLASLt's defaults
};

std::mutex mu;
std::map<const void*, Desc> descs;
std::map<const void*, Layout> layouts;
std::map<const void*, Preference> preferences;
Counts counts;

cublasStatus_t Fail(cublasStatus_t status, const char* call, const char* why) {
  std::fprintf(stderr, "cublaslt_on_cpu: %s: %s\n", call, why);
  return status;
}

// Copies an attribute's value, whose size must be the attribute's own.
template <typename V>
bool Read(const void* buf, size_t size, V& out) {
  if (buf == nullptr || size != sizeof(V)) return false;
  std::memcpy(&out, buf, sizeof(V));
  return true;
}

double Load(cudaDataType_t type, const void* base, int64_t index) {
  switch (type) {
    case CUDA_R_32F:
      return static_cast<const float*>(base)[index];
    case CUDA_R_64F:
      return static_cast<const double*>(base)[index];
    default:
      return BF16BitsToFloat(static_cast<const uint16_t*>(base)[index]);
  }
}

void Store(cudaDataType_t type, void* base, int64_t index, double value) {
  switch (type) {
    case CUDA_R_32F:
      static_cast<float*>(base)[index] = static_cast<float>(value);
      break;
    case CUDA_R_64F:
      static_cast<double*>(base)[index] = value;
      break;
    default:
      static_cast<uint16_t*>(base)[index] = FloatToBF16Bits(static_cast<float>(value));
      break;
  }
}

uint32_t AlignmentOf(const void* p) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && u % a != 0) a >>= 1;
  return a;
}

// The problem D (m, n) = op(A) (m, k) op(B) (k, n) + C, as the descriptors state it; nullptr and
// a reason when they do not describe one cuBLASLt supports.
struct Problem {
  Desc op;
  Layout a, b, c, d;
  int64_t m, n, k;
};

const char* Check(const Problem& p) {
  const bool f64 = p.op.compute == CUBLAS_COMPUTE_64F && p.op.scale == CUDA_R_64F;
  const bool f32 = p.op.compute == CUBLAS_COMPUTE_32F && p.op.scale == CUDA_R_32F;
  if (!f64 && !f32) return "compute and scale types: only (64F, 64F) and (32F, 32F) here";
  if (p.a.type != p.b.type) return "A and B differ in data type";
  if (p.c.type != p.d.type) return "C and D differ in data type";
  if (f64 && (p.a.type != CUDA_R_64F || p.c.type != CUDA_R_64F)) return "64F compute needs 64F A, B, C";
  if (f32 && !(p.a.type == CUDA_R_32F && p.c.type == CUDA_R_32F) &&
      !(p.a.type == CUDA_R_16BF && (p.c.type == CUDA_R_16BF || p.c.type == CUDA_R_32F))) {
    return "32F compute takes 32F A, B into 32F C, or 16BF A, B into 16BF or 32F C";
  }
  for (const Layout* l : {&p.a, &p.b, &p.c, &p.d}) {
    if (l->rows < 1 || l->cols < 1) return "a layout with no rows or columns";
    if (l->ld < l->rows) return "leading dimension < rows (column-major)";
    if (l->batch != p.d.batch) return "batch counts differ";
  }
  if (p.c.rows != p.d.rows || p.c.cols != p.d.cols) return "C and D differ in shape";
  const int64_t a_rows = p.op.trans_a == CUBLAS_OP_N ? p.a.rows : p.a.cols;
  const int64_t b_cols = p.op.trans_b == CUBLAS_OP_N ? p.b.cols : p.b.rows;
  const int64_t b_rows = p.op.trans_b == CUBLAS_OP_N ? p.b.rows : p.b.cols;
  if (a_rows != p.m || b_cols != p.n || b_rows != p.k) return "op(A) is not m x k or op(B) is not k x n";
  return nullptr;
}

// Reads the descriptors under `mu`; false when one was never created.
bool Describe(cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
              cublasLtMatrixLayout_t d, Problem& p) {
  if (!descs.count(op) || !layouts.count(a) || !layouts.count(b) || !layouts.count(c) || !layouts.count(d))
    return false;
  p = Problem{descs[op], layouts[a], layouts[b], layouts[c], layouts[d], 0, 0, 0};
  p.m = p.d.rows, p.n = p.d.cols;
  p.k = p.op.trans_a == CUBLAS_OP_N ? p.a.cols : p.a.rows;
  return true;
}

}  // namespace

Counts GetCounts() {
  std::lock_guard<std::mutex> lock(mu);
  return counts;
}

}  // namespace lrkv::testing::cublaslt_on_cpu

using namespace lrkv::testing::cublaslt_on_cpu;  // NOLINT: the definitions below are the C API's

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  if (handle == nullptr) return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtCreate", "null handle pointer");
  *handle = new cublasLtContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute, cudaDataType_t scale) {
  std::lock_guard<std::mutex> lock(mu);
  *desc = new cublasLtMatmulDescOpaque_t{};
  descs[*desc] = Desc{compute, scale};
  ++counts.matmul_descs;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = descs.find(desc);
  if (it == descs.end()) return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescSetAttribute", "unknown desc");
  int32_t* field = attr == CUBLASLT_MATMUL_DESC_TRANSA   ? &it->second.trans_a
                   : attr == CUBLASLT_MATMUL_DESC_TRANSB ? &it->second.trans_b
                                                         : nullptr;
  if (field == nullptr) return Fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmulDescSetAttribute", "attribute");
  int32_t op = 0;
  if (!Read(buf, size, op) || (op != CUBLAS_OP_N && op != CUBLAS_OP_T)) {
    return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescSetAttribute", "TRANSA/B takes an int32_t N or T");
  }
  *field = op;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  std::lock_guard<std::mutex> lock(mu);
  *layout = new cublasLtMatrixLayoutOpaque_t{};
  layouts[*layout] = Layout{type, static_cast<int64_t>(rows), static_cast<int64_t>(cols), ld};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t size) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = layouts.find(layout);
  if (it == layouts.end())
    return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutSetAttribute", "unknown layout");
  if (attr == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT) {
    if (!Read(buf, size, it->second.batch) || it->second.batch < 1) {
      return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutSetAttribute", "BATCH_COUNT takes an int32_t >= 1");
    }
    return CUBLAS_STATUS_SUCCESS;
  }
  if (attr == CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET) {
    if (!Read(buf, size, it->second.stride)) {
      return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutSetAttribute",
                  "STRIDED_BATCH_OFFSET takes an int64_t");
    }
    return CUBLAS_STATUS_SUCCESS;
  }
  return Fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatrixLayoutSetAttribute", "attribute");
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  std::lock_guard<std::mutex> lock(mu);
  *pref = new cublasLtMatmulPreferenceOpaque_t{};
  preferences[*pref] = Preference{};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  std::lock_guard<std::mutex> lock(mu);
  if (preferences.erase(pref) == 0)
    return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceDestroy", "unknown");
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = preferences.find(pref);
  if (it == preferences.end())
    return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceSetAttribute", "unknown");
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    if (Read(buf, size, it->second.workspace)) return CUBLAS_STATUS_SUCCESS;
    return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceSetAttribute", "MAX_WORKSPACE_BYTES: uint64_t");
  }
  const int slot = attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES   ? 0
                   : attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES ? 1
                   : attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES ? 2
                   : attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES ? 3
                                                                        : -1;
  if (slot < 0) return Fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmulPreferenceSetAttribute", "attribute");
  if (!Read(buf, size, it->second.align[slot])) {
    return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceSetAttribute", "MIN_ALIGNMENT_*: uint32_t");
  }
  return CUBLAS_STATUS_SUCCESS;
}

// One algorithm, which needs each operand aligned as the preference allows at least (stored in
// the algorithm's first words) and no workspace.
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t op,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* returned) {
  std::lock_guard<std::mutex> lock(mu);
  ++counts.heuristics;
  Problem p;
  if (handle == nullptr || requested < 1 || results == nullptr || returned == nullptr || !preferences.count(pref) ||
      !Describe(op, a, b, c, d, p)) {
    return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulAlgoGetHeuristic", "a null or unknown argument");
  }
  if (const char* why = Check(p)) return Fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmulAlgoGetHeuristic", why);
  results[0] = cublasLtMatmulHeuristicResult_t{};
  for (int i = 0; i < 4; ++i) results[0].algo.data[i] = preferences[pref].align[i];
  results[0].state = CUBLAS_STATUS_SUCCESS;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t op, const void* alpha, const void* a_ptr,
                              cublasLtMatrixLayout_t a, const void* b_ptr, cublasLtMatrixLayout_t b, const void* beta,
                              const void* c_ptr, cublasLtMatrixLayout_t c, void* d_ptr, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t* algo, void* /*workspace*/, size_t /*workspace_bytes*/,
                              cudaStream_t /*stream*/) {
  Problem p;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (handle == nullptr || algo == nullptr || alpha == nullptr || beta == nullptr || !Describe(op, a, b, c, d, p)) {
      return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul", "a null or unknown argument");
    }
  }
  if (const char* why = Check(p)) return Fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmul", why);
  const void* ptrs[4] = {a_ptr, b_ptr, c_ptr, d_ptr};
  const Layout* described[4] = {&p.a, &p.b, &p.c, &p.d};
  for (int i = 0; i < 4; ++i) {
    if (ptrs[i] == nullptr) return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul", "a null matrix");
    const size_t bytes = described[i]->type == CUDA_R_64F ? 8 : described[i]->type == CUDA_R_32F ? 4 : 2;
    for (int64_t bi = 0; bi < described[i]->batch; ++bi) {  // every batch entry, at its stride
      const char* entry = static_cast<const char*>(ptrs[i]) + bi * described[i]->stride * int64_t(bytes);
      if (AlignmentOf(entry) < algo->data[i]) {
        return Fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul",
                    "a matrix (or batch entry) less aligned than its algorithm was chosen for (MIN_ALIGNMENT_*_BYTES)");
      }
    }
  }
  const bool f64 = p.op.scale == CUDA_R_64F;
  const double al = f64 ? *static_cast<const double*>(alpha) : *static_cast<const float*>(alpha);
  const double be = f64 ? *static_cast<const double*>(beta) : *static_cast<const float*>(beta);
  const bool ta = p.op.trans_a == CUBLAS_OP_T, tb = p.op.trans_b == CUBLAS_OP_T;
  for (int64_t bi = 0; bi < p.d.batch; ++bi) {
    for (int64_t j = 0; j < p.n; ++j) {
      for (int64_t i = 0; i < p.m; ++i) {
        double sum = 0;
        for (int64_t q = 0; q < p.k; ++q) {
          const int64_t ai = bi * p.a.stride + (ta ? q + i * p.a.ld : i + q * p.a.ld);
          const int64_t bj = bi * p.b.stride + (tb ? j + q * p.b.ld : q + j * p.b.ld);
          sum += Load(p.a.type, a_ptr, ai) * Load(p.b.type, b_ptr, bj);
        }
        // beta = 0: C is not read (cuBLAS's rule), so NaNs there do not reach D.
        const double prior = be == 0 ? 0.0 : be * Load(p.c.type, c_ptr, bi * p.c.stride + i + j * p.c.ld);
        Store(p.d.type, d_ptr, bi * p.d.stride + i + j * p.d.ld, al * sum + prior);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu);
  ++counts.matmuls;
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
