// A tensor: a typed, shaped, contiguous (row-major) view into device memory. Copies share storage;
// View/Slice make new views without copying. Every op documents the shapes it expects.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/allocator.h"
#include "runtime/dtype.h"

namespace lrkv {

using Shape = std::vector<int64_t>;

int64_t NumElements(const Shape& shape);

// While a kernel runs (ops/backend.h's RunKernel holds a KernelScope), its code may touch the
// elements of any tensor; outside one, the elements of an emulated device's tensor are off limits to
// the host, as a GPU's are (Device::kEmulated). A process-wide count, so that a kernel's OpenMP
// threads are inside it too.
class KernelScope {
 public:
  KernelScope();
  ~KernelScope();
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;
};
bool InsideKernel();
std::string ShapeString(const Shape& shape);  // "(2, 3, 4)"

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory. Fails with ResourceExhausted when the device cannot allocate.
  static absl::StatusOr<Tensor> Empty(const Shape& shape, DType dtype, Device device = Device::kCpu);
  static absl::StatusOr<Tensor> Zeros(const Shape& shape, DType dtype, Device device = Device::kCpu);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return NumElements(shape_); }
  int64_t nbytes() const { return numel() * DTypeSize(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::kCpu; }

  // Typed access to the data; T must match dtype, which is checked on every call (a mismatch is a
  // bug and stops the process naming both types).
  template <typename T> T* data() const {
    if (!DTypeMatches<T>(dtype_)) DTypeMismatch(dtype_, sizeof(T));
    return static_cast<T*>(raw());
  }
  // The first element's address (a device address for a device tensor). Taken outside a kernel from
  // an emulated device's tensor, it stops the process naming the tensor: that code would read GPU
  // memory from the host.
  void* raw() const {
    if (storage_->device == Device::kEmulated && !InsideKernel()) HostTouchedDeviceMemory();
    return address();
  }

  // Same elements, another shape with the same element count.
  absl::StatusOr<Tensor> View(const Shape& shape) const;
  // Rows [begin, end) along dim 0, sharing storage.
  absl::StatusOr<Tensor> Slice(int64_t begin, int64_t end) const;

  // Sets every element to zero (any device).
  absl::Status SetZero();
  // Copies src's elements (same dtype and numel, any devices) into this tensor.
  absl::Status CopyFrom(const Tensor& src);
  // A new tensor with the same contents on `device`, converted to `dtype`.
  absl::StatusOr<Tensor> To(Device device, DType dtype) const;

  std::string DebugString() const;  // "f32(2, 3) cpu"

 private:
  void* address() const { return static_cast<char*>(storage_->ptr) + offset_ * DTypeSize(dtype_); }
  [[noreturn]] void HostTouchedDeviceMemory() const;

  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  DType dtype_ = DType::kF32;
};

}  // namespace lrkv
