#include "runtime/tensor.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/ops/cast.h"
#include "runtime/status.h"

namespace lrkv {

void DTypeMismatch(DType d, size_t size) {
  std::fprintf(stderr, "lrkv: internal error: a %s tensor read as elements of %zu bytes of another type\n", DTypeName(d),
               size);
  std::abort();
}

namespace {
std::atomic<int> kernels_running{0};
}  // namespace

KernelScope::KernelScope() { kernels_running.fetch_add(1, std::memory_order_relaxed); }
KernelScope::~KernelScope() { kernels_running.fetch_sub(1, std::memory_order_relaxed); }
bool InsideKernel() { return kernels_running.load(std::memory_order_relaxed) > 0; }

void Tensor::HostTouchedDeviceMemory() const {
  std::fprintf(stderr,
               "lrkv: internal error: host code outside a kernel touched the elements of %s (a GPU's memory "
               "there); copy it with To/CopyFrom or run a kernel on it\n",
               DebugString().c_str());
  std::abort();
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const Shape& shape) { return absl::StrCat("(", absl::StrJoin(shape, ", "), ")"); }

absl::StatusOr<Tensor> Tensor::Empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) {
    LRKV_REQUIRE(d >= 0, "negative dimension in shape ", ShapeString(shape));
  }
  LRKV_TRY_ASSIGN(Allocator * alloc, AllocatorFor(device));
  const size_t bytes = static_cast<size_t>(NumElements(shape) * DTypeSize(dtype));
  LRKV_TRY_ASSIGN(void* ptr, alloc->Allocate(bytes));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(ptr, bytes, device, alloc);
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

absl::StatusOr<Tensor> Tensor::Zeros(const Shape& shape, DType dtype, Device device) {
  LRKV_TRY_ASSIGN(Tensor t, Empty(shape, dtype, device));
  LRKV_TRY(t.SetZero());
  return t;
}

absl::StatusOr<Tensor> Tensor::View(const Shape& shape) const {
  LRKV_REQUIRE(NumElements(shape) == numel(), "cannot view ", DebugString(), " as ", ShapeString(shape));
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

absl::StatusOr<Tensor> Tensor::Slice(int64_t begin, int64_t end) const {
  LRKV_REQUIRE(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "slice [", begin, ", ",
               end, ") out of range for ", DebugString());
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.offset_ = offset_ + begin * (numel() / (shape_[0] == 0 ? 1 : shape_[0]));
  return t;
}

absl::Status Tensor::SetZero() {
  if (!defined()) return absl::OkStatus();
  return storage_->allocator->Memset0(address(), nbytes());
}

absl::Status Tensor::CopyFrom(const Tensor& src) {
  LRKV_REQUIRE(src.dtype() == dtype_ && src.numel() == numel(), "copy from ", src.DebugString(),
               " into ", DebugString());
  if (src.device() == Device::kCpu) return storage_->allocator->CopyFromHost(address(), src.address(), nbytes());
  if (device() == Device::kCpu) return src.storage_->allocator->CopyToHost(address(), src.address(), nbytes());
  if (src.device() == device()) return storage_->allocator->CopyWithinDevice(address(), src.address(), nbytes());
  // Between different device kinds through the host.
  std::vector<char> host(nbytes());
  LRKV_TRY(src.storage_->allocator->CopyToHost(host.data(), src.address(), nbytes()));
  return storage_->allocator->CopyFromHost(address(), host.data(), nbytes());
}

absl::StatusOr<Tensor> Tensor::To(Device device, DType dtype) const {
  // Moved first, then converted where it lands (on the device: the fp32 masters' bf16 copies).
  LRKV_TRY_ASSIGN(Tensor moved, Empty(shape_, dtype_, device));
  LRKV_TRY(moved.CopyFrom(*this));
  if (dtype == dtype_) return moved;
  LRKV_TRY_ASSIGN(Tensor out, Empty(shape_, dtype, device));
  LRKV_TRY(Cast(moved, out));
  return out;
}

std::string Tensor::DebugString() const {
  return absl::StrCat(DTypeName(dtype_), ShapeString(shape_), " ", DeviceName(device()));
}

}  // namespace lrkv
