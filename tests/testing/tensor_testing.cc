#include "tests/testing/tensor_testing.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace lrkv::testing {

Tensor Random(const Shape& shape, uint64_t seed, DType dtype) {
  Tensor t = Tensor::Empty(shape, dtype).value();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int64_t i = 0; i < t.numel(); ++i) Set(t, i, u(rng));
  return t;
}

Tensor Tokens(const Shape& shape, int32_t vocab, uint64_t seed) {
  Tensor t = Tensor::Empty(shape, DType::kI32).value();
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng() % vocab);
  return t;
}

Tensor ZerosLike(const Tensor& t) { return Tensor::Zeros(t.shape(), t.dtype()).value(); }

double At(const Tensor& t, int64_t i) {
  return t.dtype() == DType::kF64 ? t.data<double>()[i] : t.data<float>()[i];
}

void Set(Tensor& t, int64_t i, double value) {
  if (t.dtype() == DType::kF64) {
    t.data<double>()[i] = value;
  } else {
    t.data<float>()[i] = static_cast<float>(value);
  }
}

double RelativeError(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double diff = 0, scale = 1e-30;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) {
    diff = std::max(diff, std::abs(At(a, i) - At(b, i)));
    scale = std::max(scale, std::abs(At(b, i)));
  }
  return diff / scale;
}

double MaxGradientError(GradCase& c, double h) {
  Tensor probe = c.forward(c.inputs).value();
  const Tensor r = Random(probe.shape(), 999, probe.dtype());
  auto loss = [&]() {
    Tensor y = c.forward(c.inputs).value();
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += At(y, i) * At(r, i);
    return s;
  };
  std::vector<Tensor> grads = c.backward(c.inputs, r).value();
  EXPECT_EQ(grads.size(), c.inputs.size());
  double worst = 0;
  for (size_t k = 0; k < c.inputs.size(); ++k) {
    Tensor& x = c.inputs[k];
    if (x.dtype() == DType::kI32) continue;  // token ids are not differentiable
    Tensor numeric = ZerosLike(x);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double saved = At(x, i);
      Set(x, i, saved + h);
      const double up = loss();
      Set(x, i, saved - h);
      const double down = loss();
      Set(x, i, saved);
      Set(numeric, i, (up - down) / (2 * h));
    }
    worst = std::max(worst, RelativeError(grads[k], numeric));
  }
  return worst;
}

}  // namespace lrkv::testing
