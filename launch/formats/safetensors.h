// The safetensors format (https://github.com/huggingface/safetensors), read and written without any
// other library than a JSON parser:
//   8 bytes      N, the header length, unsigned little-endian
//   N bytes      a JSON object: {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]},
//                ..., "__metadata__": {"KEY": "VALUE", ...}}, padded with spaces (we pad to a
//                multiple of 8, as the format recommends, so the data is aligned)
//   the rest     the tensors' bytes, little-endian, row-major; data_offsets are relative to the
//                byte after the header, and the tensors cover it exactly, without gaps or overlap.
// The reader checks all of that (and the file length) before it returns anything, and reads the
// tensors one at a time, so neither side ever holds more than one tensor of a large model.
// No MPI, no model: launch/formats/model_weights.h maps a file onto a model's parameters.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/tensor.h"

namespace lrkv {

// One tensor in a file's header.
struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;  // "F32", "BF16", ... (the format's names)
  Shape shape;
  int64_t begin = 0, end = 0;  // bytes, relative to the start of the data section
};

using SafetensorsMetadata = std::map<std::string, std::string>;

// The format's name of an lrkv dtype ("F32", "F64", "BF16", "I32"), and back (NotFound-free: an
// InvalidArgument naming the dtype when lrkv has no such dtype).
const char* SafetensorsDTypeName(DType dtype);
absl::StatusOr<DType> DTypeFromSafetensors(const std::string& name);

class SafetensorsReader {
 public:
  // Reads and checks the header of `path` (and that the file is exactly as long as it says).
  // Errors name the file and, where one is at fault, the tensor.
  static absl::StatusOr<SafetensorsReader> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // In the order of their data.
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  const SafetensorsTensorInfo* Find(const std::string& name) const;  // nullptr if absent
  const SafetensorsMetadata& metadata() const { return metadata_; }

  // The tensor as a host tensor of its shape and dtype (F32, F64, BF16 or I32).
  absl::StatusOr<Tensor> Read(const std::string& name) const;
  // Into `out`, a host tensor of the same dtype and element count.
  absl::Status ReadInto(const std::string& name, Tensor& out) const;

 private:
  std::string path_;
  int64_t data_start_ = 0;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  SafetensorsMetadata metadata_;
};

// Writes a file tensor by tensor: the header first (offsets assigned in the order given), then
// each tensor's bytes by Append, in that order. Everything goes to PATH.tmp, which Finish renames
// to PATH once every tensor is in; a writer dropped before that removes it.
class SafetensorsWriter {
 public:
  // `tensors`: name, dtype and shape of each (begin/end are ignored and assigned here).
  static absl::StatusOr<SafetensorsWriter> Create(const std::string& path, std::vector<SafetensorsTensorInfo> tensors,
                                                  const SafetensorsMetadata& metadata);
  SafetensorsWriter(SafetensorsWriter&&) noexcept;
  SafetensorsWriter& operator=(SafetensorsWriter&&) noexcept;
  ~SafetensorsWriter();

  // The next tensor's values: a host tensor of its dtype and element count.
  absl::Status Append(const Tensor& data);
  absl::Status Finish();
  int64_t bytes() const { return bytes_; }  // the file's length

 private:
  SafetensorsWriter() = default;
  void Discard();

  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  std::vector<SafetensorsTensorInfo> tensors_;
  size_t next_ = 0;
  int64_t bytes_ = 0;
};

// The whole file at once: (name, host tensor) pairs in the order to store them.
absl::Status WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const SafetensorsMetadata& metadata);

}  // namespace lrkv
