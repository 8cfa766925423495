#include "model/attention/head_maps.h"

#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace lrkv {

absl::StatusOr<Eigen::MatrixXd> ParameterMatrix(const Parameter& p, int64_t rows) {
  const int64_t n = p.value.numel();
  LRKV_REQUIRE(rows > 0 && n % rows == 0, p.spec.name, ": ", n, " values do not make ", rows, " rows");
  LRKV_TRY_ASSIGN(const Tensor host, p.value.To(Device::kCpu, DType::kF64));
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  return Eigen::MatrixXd(Eigen::Map<const RowMajor>(host.data<double>(), rows, n / rows));
}

}  // namespace lrkv
