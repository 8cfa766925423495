#include "launch/formats/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/status.h"

// The tensors' bytes are the host's: the format is little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace lrkv {
namespace {

constexpr char kMetadataKey[] = "__metadata__";
// The reference implementation refuses larger headers; so do we (a corrupt length otherwise asks
// for gigabytes).
constexpr int64_t kMaxHeaderBytes = 100 << 20;

// Bytes per element of every dtype the format defines; 0 for a name it does not.
int64_t ElementBytes(const std::string& dtype) {
  static const std::map<std::string, int64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

std::string ShapeText(const Shape& shape) { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

absl::Status Corrupt(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat(path, " is not a valid safetensors file: ", what));
}

// One header entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e]}.
absl::Status ParseEntry(const std::string& path, const std::string& name, const nlohmann::json& entry,
                        SafetensorsTensorInfo& info) {
  const std::string where = absl::StrCat("tensor '", name, "'");
  if (!entry.is_object()) return Corrupt(path, absl::StrCat(where, " is not a JSON object"));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) return Corrupt(path, absl::StrCat(where, " has no \"", key, "\""));
  }
  if (!entry["dtype"].is_string()) return Corrupt(path, absl::StrCat(where, ": \"dtype\" is not a string"));
  info.name = name;
  info.dtype = entry["dtype"].get<std::string>();
  const int64_t element = ElementBytes(info.dtype);
  if (element == 0) return Corrupt(path, absl::StrCat(where, " has unknown dtype \"", info.dtype, "\""));
  const nlohmann::json& shape = entry["shape"];
  if (!shape.is_array()) return Corrupt(path, absl::StrCat(where, ": \"shape\" is not an array"));
  int64_t bytes = element;
  for (const nlohmann::json& d : shape) {
    if (!d.is_number_unsigned()) {
      return Corrupt(path, absl::StrCat(where, ": \"shape\" ", shape.dump(), " holds something other than sizes"));
    }
    const uint64_t n = d.get<uint64_t>();
    if (n > (uint64_t(1) << 62) || __builtin_mul_overflow(bytes, static_cast<int64_t>(n), &bytes)) {
      return Corrupt(path, absl::StrCat(where, ": shape ", shape.dump(), " is impossibly large"));
    }
    info.shape.push_back(static_cast<int64_t>(n));
  }
  const nlohmann::json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return Corrupt(path, absl::StrCat(where, ": \"data_offsets\" is not [BEGIN, END]"));
  }
  const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  if (begin > end || end > (uint64_t(1) << 62)) {
    return Corrupt(path, absl::StrCat(where, ": bad \"data_offsets\" ", offsets.dump()));
  }
  info.begin = static_cast<int64_t>(begin), info.end = static_cast<int64_t>(end);
  if (info.end - info.begin != bytes) {
    return Corrupt(path, absl::StrCat(where, " (", info.dtype, " ", ShapeText(info.shape), ") needs ", bytes,
                                      " bytes but its data_offsets ", offsets.dump(), " span ", info.end - info.begin));
  }
  return absl::OkStatus();
}

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

const char* SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF64: return "F64";
    case DType::kBF16: return "BF16";
    case DType::kI32: return "I32";
  }
  return "?";
}

absl::StatusOr<DType> DTypeFromSafetensors(const std::string& name) {
  for (DType d : {DType::kF32, DType::kF64, DType::kBF16, DType::kI32}) {
    if (name == SafetensorsDTypeName(d)) return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("safetensors dtype ", name, " has no lrkv counterpart (lrkv reads F32, F64, BF16 and I32)"));
}

absl::StatusOr<SafetensorsReader> SafetensorsReader::Open(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", ec.message()));
  const int64_t file_size = static_cast<int64_t>(size);
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  if (file_size < 8) {
    return Corrupt(path, absl::StrCat("it is ", file_size, " bytes long, shorter than the 8-byte header length"));
  }
  unsigned char len[8];
  if (std::fread(len, 1, 8, f.get()) != 8) return absl::DataLossError(absl::StrCat("cannot read ", path));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > uint64_t(kMaxHeaderBytes)) {
    return Corrupt(path, absl::StrCat("its header length is ", n, " bytes (at most ", kMaxHeaderBytes, " allowed)"));
  }
  if (int64_t(n) > file_size - 8) {
    return Corrupt(path, absl::StrCat("truncated: the header is ", n, " bytes long but only ", file_size - 8,
                                      " bytes follow the header length"));
  }
  std::string header(n, '\0');
  if (std::fread(header.data(), 1, n, f.get()) != n) return absl::DataLossError(absl::StrCat("cannot read ", path));
  if (header.empty() || header[0] != '{') return Corrupt(path, "its header is not a JSON object");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(header);
  } catch (const nlohmann::json::parse_error& e) {
    return Corrupt(path, absl::StrCat("its header is not valid JSON: ", e.what()));
  }
  if (!json.is_object()) return Corrupt(path, "its header is not a JSON object");

  SafetensorsReader r;
  r.path_ = path;
  r.data_start_ = 8 + static_cast<int64_t>(n);
  for (const auto& [key, value] : json.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) return Corrupt(path, "\"__metadata__\" is not a JSON object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) return Corrupt(path, absl::StrCat("metadata \"", k, "\" is not a string"));
        r.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    SafetensorsTensorInfo info;
    LRKV_TRY(ParseEntry(path, key, value, info));
    r.tensors_.push_back(std::move(info));
  }
  // The tensors tile the data section: sorted by offset, each starts where the previous ends.
  std::stable_sort(r.tensors_.begin(), r.tensors_.end(),
                   [](const SafetensorsTensorInfo& a, const SafetensorsTensorInfo& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  const int64_t data_bytes = file_size - r.data_start_;
  int64_t expected = 0;
  for (size_t i = 0; i < r.tensors_.size(); ++i) {
    const SafetensorsTensorInfo& t = r.tensors_[i];
    if (t.begin != expected) {
      return Corrupt(path, t.begin > expected
                               ? absl::StrCat("data bytes [", expected, ", ", t.begin, ") before tensor '", t.name,
                                              "' belong to no tensor")
                               : absl::StrCat("tensor '", t.name, "' overlaps tensor '", r.tensors_[i - 1].name, "'"));
    }
    if (t.end > data_bytes) {
      return Corrupt(path, absl::StrCat("truncated: tensor '", t.name, "' occupies data bytes [", t.begin, ", ", t.end,
                                        ") but the file holds only ", data_bytes, " bytes of data (the file is ", file_size,
                                        " bytes long, its header implies ", r.data_start_ + r.tensors_.back().end,
                                        ")"));
    }
    expected = t.end;
    r.index_[t.name] = i;
  }
  if (expected != data_bytes) {
    return Corrupt(path, absl::StrCat(data_bytes - expected, " bytes after the last tensor belong to no tensor"));
  }
  return r;
}

const SafetensorsTensorInfo* SafetensorsReader::Find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<Tensor> SafetensorsReader::Read(const std::string& name) const {
  const SafetensorsTensorInfo* info = Find(name);
  LRKV_REQUIRE_CODE(absl::StatusCode::kNotFound, info != nullptr, path_, " has no tensor '", name, "'");
  LRKV_TRY_ASSIGN(const DType dtype, DTypeFromSafetensors(info->dtype));
  LRKV_TRY_ASSIGN(Tensor t, Tensor::Empty(info->shape, dtype));
  LRKV_TRY(ReadInto(name, t));
  return t;
}

absl::Status SafetensorsReader::ReadInto(const std::string& name, Tensor& out) const {
  const SafetensorsTensorInfo* info = Find(name);
  LRKV_REQUIRE_CODE(absl::StatusCode::kNotFound, info != nullptr, path_, " has no tensor '", name, "'");
  LRKV_TRY_ASSIGN(const DType dtype, DTypeFromSafetensors(info->dtype));
  LRKV_REQUIRE(out.device() == Device::kCpu && out.dtype() == dtype && out.numel() == NumElements(info->shape),
               "tensor '", name, "' of ", path_, " is ", info->dtype, " ", ShapeText(info->shape), "; cannot read it into a ",
               DTypeName(out.dtype()), " tensor of ", out.numel(), " elements");
  File f(std::fopen(path_.c_str(), "rb"));
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path_, ": ", std::strerror(errno)));
  const size_t bytes = static_cast<size_t>(info->end - info->begin);
  if (::fseeko(f.get(), static_cast<off_t>(data_start_ + info->begin), SEEK_SET) != 0 ||
      std::fread(out.raw(), 1, bytes, f.get()) != bytes) {
    return absl::DataLossError(absl::StrCat("reading tensor '", name, "' of ", path_, " failed (file changed?)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SafetensorsWriter> SafetensorsWriter::Create(const std::string& path,
                                                            std::vector<SafetensorsTensorInfo> tensors,
                                                            const SafetensorsMetadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  int64_t offset = 0;
  for (SafetensorsTensorInfo& t : tensors) {
    LRKV_REQUIRE(t.name != kMetadataKey && !t.name.empty(), "a tensor cannot be named '", t.name, "'");
    LRKV_REQUIRE(!header.contains(t.name), "tensor '", t.name, "' is listed twice");
    LRKV_TRY_ASSIGN(const DType dtype, DTypeFromSafetensors(t.dtype));
    t.begin = offset;
    t.end = offset + NumElements(t.shape) * DTypeSize(dtype);
    offset = t.end;
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  }
  std::string text = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned

  SafetensorsWriter w;
  w.path_ = path;
  w.tmp_ = path + ".tmp";
  w.file_ = std::fopen(w.tmp_.c_str(), "wb");
  if (w.file_ == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("cannot write ", w.tmp_, ": ", std::strerror(errno)));
  }
  w.tensors_ = std::move(tensors);
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));
  if (std::fwrite(len, 1, 8, w.file_) != 8 || std::fwrite(text.data(), 1, text.size(), w.file_) != text.size()) {
    return absl::DataLossError(absl::StrCat("writing ", w.tmp_, " failed: ", std::strerror(errno)));
  }
  w.bytes_ = 8 + static_cast<int64_t>(text.size()) + offset;
  return w;
}

SafetensorsWriter::SafetensorsWriter(SafetensorsWriter&& o) noexcept { *this = std::move(o); }

SafetensorsWriter& SafetensorsWriter::operator=(SafetensorsWriter&& o) noexcept {
  if (this != &o) {
    Discard();
    path_ = std::move(o.path_), tmp_ = std::move(o.tmp_);
    tensors_ = std::move(o.tensors_);
    file_ = std::exchange(o.file_, nullptr);
    next_ = o.next_, bytes_ = o.bytes_;
  }
  return *this;
}

SafetensorsWriter::~SafetensorsWriter() { Discard(); }

void SafetensorsWriter::Discard() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  file_ = nullptr;
  std::remove(tmp_.c_str());
}

absl::Status SafetensorsWriter::Append(const Tensor& data) {
  LRKV_REQUIRE(file_ != nullptr && next_ < tensors_.size(), "every tensor of ", path_, " is already written");
  const SafetensorsTensorInfo& t = tensors_[next_];
  LRKV_TRY_ASSIGN(const DType dtype, DTypeFromSafetensors(t.dtype));
  LRKV_REQUIRE(data.device() == Device::kCpu && data.dtype() == dtype && data.numel() == NumElements(t.shape),
               "tensor '", t.name, "' is ", t.dtype, " ", ShapeText(t.shape), " but was given a ", DTypeName(data.dtype()),
               " tensor of ", data.numel(), " elements");
  const size_t bytes = static_cast<size_t>(t.end - t.begin);
  if (std::fwrite(data.raw(), 1, bytes, file_) != bytes) {
    return absl::DataLossError(absl::StrCat("writing ", tmp_, " failed: ", std::strerror(errno)));
  }
  ++next_;
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::Finish() {
  LRKV_REQUIRE(file_ != nullptr, "safetensors writer of ", path_, " is closed");
  LRKV_REQUIRE(next_ == tensors_.size(), path_, ": ", tensors_.size() - next_, " tensors not written, starting with '",
               tensors_[next_].name, "'");
  const bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const bool closed = std::fclose(std::exchange(file_, nullptr)) == 0;
  if (!ok || !closed || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp_.c_str());
    return absl::DataLossError(absl::StrCat("writing ", path_, " failed: ", why));
  }
  return absl::OkStatus();
}

absl::Status WriteSafetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const SafetensorsMetadata& metadata) {
  std::vector<SafetensorsTensorInfo> infos;
  for (const auto& [name, t] : tensors) {
    SafetensorsTensorInfo info;
    info.name = name;
    info.dtype = SafetensorsDTypeName(t.dtype());
    info.shape = t.shape();
    infos.push_back(std::move(info));
  }
  LRKV_TRY_ASSIGN(SafetensorsWriter w, SafetensorsWriter::Create(path, std::move(infos), metadata));
  for (const auto& entry : tensors) LRKV_TRY(w.Append(entry.second));
  return w.Finish();
}

}  // namespace lrkv
