// Errors in lrkv are absl::Status values. Every fallible call is checked by LRKV_TRY (or, when it
// returns a value, LRKV_TRY_ASSIGN); nothing aborts silently.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define LRKV_CONCAT_INNER_(a, b) a##b
#define LRKV_CONCAT_(a, b) LRKV_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function when it is not OK.
#define LRKV_TRY(expr)                              \
  do {                                              \
    const ::absl::Status lrkv_try_status_ = (expr); \
    if (!lrkv_try_status_.ok()) return lrkv_try_status_; \
  } while (0)

// `lhs = value of expr` when expr (a StatusOr) is OK; otherwise returns its status.
#define LRKV_TRY_ASSIGN(lhs, expr) \
  LRKV_TRY_ASSIGN_IMPL_(LRKV_CONCAT_(lrkv_statusor_, __LINE__), lhs, expr)
#define LRKV_TRY_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

// Returns InvalidArgument with the concatenated message when `cond` is false.
#define LRKV_REQUIRE(cond, ...)                                          \
  do {                                                                   \
    if (!(cond)) return ::absl::InvalidArgumentError(::absl::StrCat(__VA_ARGS__)); \
  } while (0)

// The same with another status code (e.g. kDataLoss for corrupted files).
#define LRKV_REQUIRE_CODE(code, cond, ...)                                   \
  do {                                                                       \
    if (!(cond)) return ::absl::Status((code), ::absl::StrCat(__VA_ARGS__)); \
  } while (0)
