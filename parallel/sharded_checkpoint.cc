#include "parallel/sharded_checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parallel/agreement.h"
#include "runtime/crc32c.h"
#include "runtime/durable_file.h"
#include "runtime/status.h"
#include "runtime/test_hooks.h"

namespace lrkv {
namespace fs = std::filesystem;
namespace {

constexpr char kManifestFile[] = "manifest.pb";
constexpr char kManifestMagic[8] = {'L', 'R', 'K', 'V', 'C', 'K', 'P', 'T'};

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return Errno(absl::StrCat("cannot rename ", from, " to"), to);
  return absl::OkStatus();
}

// `length` elements of a piece, from its element `local`, are the global elements from `global`.
struct Run {
  int64_t global, length, local;
};

// The runs of elements [flat_begin, flat_end) of a block along `dim` (-1: the whole tensor), in
// ascending global order. Within a block split along one dimension, each outer index gives one
// run that is contiguous both in the block and in the global tensor.
std::vector<Run> BlockRuns(const Shape& shape, int dim, int64_t offset, const Shape& block_shape, int64_t flat_begin,
                           int64_t flat_end) {
  std::vector<Run> runs;
  if (flat_end <= flat_begin) return runs;
  if (dim < 0) {
    runs.push_back({flat_begin, flat_end - flat_begin, 0});
    return runs;
  }
  int64_t inner = 1;
  for (size_t i = dim + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t seg = block_shape[dim] * inner;
  for (int64_t o = flat_begin / seg; o <= (flat_end - 1) / seg; ++o) {
    const int64_t b = std::max(flat_begin, o * seg), e = std::min(flat_end, (o + 1) * seg);
    runs.push_back({(o * shape[dim] + offset) * inner + (b - o * seg), e - b, b - flat_begin});
  }
  return runs;
}

std::vector<Run> PieceRuns(const TensorRecord& r, const TensorPiece& p) {
  const Shape shape(r.shape().begin(), r.shape().end()), extent(p.extent().begin(), p.extent().end());
  int dim = -1;
  for (int i = 0; i < static_cast<int>(shape.size()); ++i) {
    if (extent[i] != shape[i]) dim = i;
  }
  return BlockRuns(shape, dim, dim < 0 ? 0 : p.offset(dim), extent, p.flat_begin(), p.flat_end());
}

// This rank's stored pieces, written to DIR/shard_RANK.bin; their records (pieces only) in `mine`.
absl::StatusOr<int64_t> WriteShard(int rank, const std::string& dir, const std::vector<TensorBlock>& blocks,
                                   CheckpointManifest& mine) {
  const std::string file = absl::StrFormat("shard_%05d.bin", rank);
  // Host blocks are written from their own memory; a device block from a host copy of it.
  std::vector<std::pair<const char*, size_t>> buffers;
  std::vector<Tensor> host_copies;
  host_copies.reserve(blocks.size());
  int64_t bytes = 0;
  for (const TensorBlock& b : blocks) {
    if (!b.store) continue;
    LRKV_REQUIRE(b.data.numel() == b.flat_end - b.flat_begin, "checkpoint: block ", b.name, " holds ",
                 b.data.numel(), " elements for the range [", b.flat_begin, ", ", b.flat_end, ")");
    if (b.data.device() != Device::kCpu) {
      LRKV_TRY_ASSIGN(Tensor host, b.data.To(Device::kCpu, b.data.dtype()));
      host_copies.push_back(std::move(host));
    }
    const Tensor& data = b.data.device() == Device::kCpu ? b.data : host_copies.back();
    TensorRecord* r = mine.add_tensors();
    r->set_name(b.name);
    for (int64_t e : b.shape) r->add_shape(e);
    r->set_dtype(DTypeName(b.data.dtype()));
    TensorPiece* p = r->add_pieces();
    for (size_t i = 0; i < b.shape.size(); ++i) {
      p->add_offset(static_cast<int>(i) == b.dim ? b.offset : 0);
      p->add_extent(b.block_shape[i]);
    }
    p->set_flat_begin(b.flat_begin);
    p->set_flat_end(b.flat_end);
    p->set_file(file);
    p->set_byte_offset(bytes);
    p->set_byte_length(data.nbytes());
    p->set_crc32c(Crc32c(data.raw(), data.nbytes()));
    p->set_rank(rank);
    buffers.emplace_back(static_cast<const char*>(data.raw()), data.nbytes());
    bytes += data.nbytes();
  }
  if (bytes == 0) return 0;
  LRKV_TRY(WriteFileSynced(dir + "/" + file, buffers));
  return bytes;
}

// Rank 0: every rank's records merged into one manifest, coverage checked.
absl::Status MergeRecords(const std::vector<std::string>& parts, CheckpointManifest& manifest) {
  std::map<std::string, TensorRecord*> by_name;
  for (const std::string& part : parts) {
    CheckpointManifest m;
    LRKV_REQUIRE(m.ParseFromString(part), "checkpoint: a rank sent an unreadable piece list");
    for (const TensorRecord& r : m.tensors()) {
      TensorRecord*& merged = by_name[r.name()];
      if (merged == nullptr) {
        merged = manifest.add_tensors();
        *merged = r;
        continue;
      }
      LRKV_REQUIRE(merged->shape_size() == r.shape_size() &&
                       std::equal(r.shape().begin(), r.shape().end(), merged->shape().begin()) &&
                       merged->dtype() == r.dtype(),
                   "checkpoint: ranks disagree on the shape or dtype of ", r.name());
      for (const TensorPiece& p : r.pieces()) *merged->add_pieces() = p;
    }
  }
  for (const TensorRecord& r : manifest.tensors()) {
    int64_t numel = 1, covered = 0;
    for (int64_t e : r.shape()) numel *= e;
    for (const TensorPiece& p : r.pieces()) covered += p.flat_end() - p.flat_begin();
    LRKV_REQUIRE(covered == numel, "checkpoint: the pieces of ", r.name(), " hold ", covered, " elements of ", numel);
  }
  return absl::OkStatus();
}

// Rank 0: manifest into the temporary directory, the rename, `latest`, then pruning.
absl::Status Commit(const std::string& dir, const std::string& tmp, const std::string& name,
                    const CheckpointManifest& manifest, const CheckpointOptions& options) {
  const std::string payload = manifest.SerializeAsString();
  std::string file(kManifestMagic, sizeof(kManifestMagic));
  const uint32_t crc = Crc32c(payload.data(), payload.size());
  file.append(reinterpret_cast<const char*>(&crc), sizeof(crc));
  file += payload;
  LRKV_TRY(WriteFileSynced(tmp + "/" + kManifestFile, {{file.data(), file.size()}}));
  LRKV_TRY(SyncDirectory(tmp));
  PauseAtForTests("manifest_written");
  const std::string final_dir = dir + "/" + name;
  std::error_code ec;
  fs::remove_all(final_dir, ec);  // a checkpoint of the same name is replaced
  LRKV_TRY(Rename(tmp, final_dir));
  LRKV_TRY(SyncDirectory(dir));
  PauseAtForTests("renamed");
  // A `latest` that is not a file (never written so by lrkv; resuming said so) cannot be renamed over.
  if (fs::is_directory(fs::symlink_status(dir + "/latest", ec))) fs::remove_all(dir + "/latest", ec);
  LRKV_TRY(WriteFileDurably(dir + "/latest", name + "\n"));
  if (options.keep_last <= 0) return absl::OkStatus();
  std::vector<std::string> complete = ListCheckpoints(dir);
  complete.erase(std::remove(complete.begin(), complete.end(), name), complete.end());
  for (size_t i = 0; i + options.keep_last < complete.size() + 1; ++i) fs::remove_all(dir + "/" + complete[i], ec);
  return absl::OkStatus();
}

// A piece's bytes, checked against the manifest.
absl::StatusOr<std::string> ReadPiece(const std::string& path, const TensorRecord& r, const TensorPiece& p) {
  const std::string file = path + "/" + p.file();
  const int fd = ::open(file.c_str(), O_RDONLY);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("checkpoint shard ", file, " is missing (tensor ", r.name(), ")"));
  }
  struct stat st {};
  ::fstat(fd, &st);
  if (st.st_size < p.byte_offset() + p.byte_length()) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat("checkpoint shard ", file, " is truncated: ", st.st_size,
                                            " bytes, tensor ", r.name(), " needs bytes up to ",
                                            p.byte_offset() + p.byte_length()));
  }
  std::string bytes(p.byte_length(), '\0');
  const ssize_t n = ::pread(fd, bytes.data(), bytes.size(), p.byte_offset());
  ::close(fd);
  if (n != static_cast<ssize_t>(bytes.size())) return Errno(absl::StrCat("cannot read ", r.name(), " from"), file);
  if (Crc32c(bytes.data(), bytes.size()) != p.crc32c()) {
    return absl::DataLossError(absl::StrCat("checkpoint shard ", file, ": CRC32C mismatch in tensor ", r.name(),
                                            " (bytes ", p.byte_offset(), " to ", p.byte_offset() + p.byte_length(),
                                            "): the file is corrupted"));
  }
  return bytes;
}

// Stages `b`'s elements from the checkpoint into `staged` (same dtype, flat).
absl::StatusOr<int64_t> StageBlock(const std::string& path, const TensorRecord& r, const TensorBlock& b,
                                   Tensor& staged) {
  LRKV_REQUIRE(r.shape_size() == static_cast<int>(b.shape.size()) &&
                   std::equal(b.shape.begin(), b.shape.end(), r.shape().begin()),
               "checkpoint ", path, ": tensor ", b.name, " has shape ", ShapeString(Shape(r.shape().begin(), r.shape().end())),
               " but this run's is ", ShapeString(b.shape));
  LRKV_TRY_ASSIGN(const DType dtype, RecordDType(r));
  LRKV_REQUIRE(dtype == b.data.dtype(), "checkpoint ", path, ": tensor ", b.name, " is ", r.dtype(), " but this run's is ",
               DTypeName(b.data.dtype()));
  LRKV_TRY_ASSIGN(staged, Tensor::Empty({b.flat_end - b.flat_begin}, dtype));
  const int64_t size = DTypeSize(dtype);
  const std::vector<Run> want = BlockRuns(b.shape, b.dim, b.offset, b.block_shape, b.flat_begin, b.flat_end);
  int64_t covered = 0, bytes_read = 0;
  for (const TensorPiece& p : r.pieces()) {
    const std::vector<Run> have = PieceRuns(r, p);
    std::string data;
    for (size_t i = 0, j = 0; i < want.size() && j < have.size();) {
      const int64_t lo = std::max(want[i].global, have[j].global);
      const int64_t hi = std::min(want[i].global + want[i].length, have[j].global + have[j].length);
      if (lo < hi) {
        if (data.empty()) {
          LRKV_TRY_ASSIGN(data, ReadPiece(path, r, p));
          bytes_read += static_cast<int64_t>(data.size());
        }
        std::memcpy(static_cast<char*>(staged.raw()) + (want[i].local + lo - want[i].global) * size,
                    data.data() + (have[j].local + lo - have[j].global) * size, (hi - lo) * size);
        covered += hi - lo;
      }
      if (want[i].global + want[i].length < have[j].global + have[j].length) {
        ++i;
      } else {
        ++j;
      }
    }
  }
  LRKV_REQUIRE(covered == b.flat_end - b.flat_begin, "checkpoint ", path, ": the pieces of tensor ", b.name, " hold ",
               covered, " of the ", b.flat_end - b.flat_begin, " elements this rank needs");
  return bytes_read;
}

}  // namespace

absl::StatusOr<DType> RecordDType(const TensorRecord& r) {
  for (DType d : {DType::kF32, DType::kF64, DType::kBF16, DType::kI32}) {
    if (r.dtype() == DTypeName(d)) return d;
  }
  return absl::DataLossError(absl::StrCat("tensor ", r.name(), " has unknown dtype '", r.dtype(), "' in the manifest"));
}

absl::StatusOr<int64_t> SaveCheckpoint(Communicator& world, const std::string& dir, const std::string& name,
                                       const std::vector<TensorBlock>& blocks, const std::string& state,
                                       const std::string& state_type, const CheckpointOptions& options) {
  const std::string tmp = dir + "/.tmp-" + name;
  absl::Status status;
  if (world.rank() == 0) {
    // Leftovers of saves that were killed are removed; complete checkpoints are never touched.
    std::error_code ec;
    fs::create_directories(dir, ec);
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(entry.path(), ec);
    }
    if (!fs::create_directory(tmp, ec)) {
      status = absl::PermissionDeniedError(
          absl::StrCat("cannot create checkpoint directory ", tmp, ": ", ec ? ec.message() : "exists"));
    }
  }
  LRKV_TRY(AgreeOnStatus(world, status));
  CheckpointManifest mine;
  absl::StatusOr<int64_t> written = WriteShard(world.rank(), tmp, blocks, mine);
  PauseAtForTests("shards_written");
  LRKV_TRY(AgreeOnStatus(world, written.status()));
  if (world.rank() != 0) {
    LRKV_TRY(SendString(world, mine.SerializeAsString(), 0));
  } else {
    std::vector<std::string> parts = {mine.SerializeAsString()};
    for (int r = 1; r < world.size(); ++r) {
      LRKV_TRY_ASSIGN(std::string part, RecvString(world, r));
      parts.push_back(std::move(part));
    }
    CheckpointManifest manifest;
    manifest.set_version(kManifestVersion);
    manifest.set_world_size(world.size());
    manifest.set_state(state);
    manifest.set_state_type(state_type);
    status = MergeRecords(parts, manifest);
    if (status.ok()) status = Commit(dir, tmp, name, manifest, options);
  }
  LRKV_TRY(AgreeOnStatus(world, status));
  return *written;
}

std::vector<std::string> ListCheckpoints(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string n = entry.path().filename().string();
    if (n[0] != '.' && fs::is_regular_file(entry.path() / kManifestFile, ec)) names.push_back(n);
  }
  std::sort(names.begin(), names.end());  // step_%08d names sort by step
  return names;
}

absl::StatusOr<std::string> LatestCheckpoint(const std::string& dir, std::string* note) {
  const std::string pointer = dir + "/latest";
  std::error_code ec;
  std::string problem;  // why `latest` cannot be followed; empty when it can
  std::string name;
  if (!fs::exists(fs::symlink_status(pointer, ec))) {
    problem = pointer + " is missing";
  } else if (!fs::is_regular_file(pointer, ec)) {
    problem = pointer + " is not a file";
  } else {
    std::ifstream in(pointer);
    std::getline(in, name);
    const bool printable = std::all_of(name.begin(), name.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
    if (name.empty()) {
      problem = pointer + " is empty";
    } else if (!printable) {
      problem = absl::StrCat(pointer, " is corrupt (it holds ", name.size(), " bytes that are not a checkpoint name)");
    } else if (name.find('/') != std::string::npos || name == "." || name == "..") {
      return absl::InvalidArgumentError(absl::StrCat(pointer, " points outside the checkpoint directory ('", name,
                                                     "'): a checkpoint pointer names a directory inside ", dir,
                                                     "; refusing to follow it"));
    } else if (!fs::is_directory(dir + "/" + name, ec)) {
      problem = absl::StrCat(pointer, " names ", name, ", which is not in ", dir);
    }
  }
  if (problem.empty()) return dir + "/" + name;
  // Fall back to the newest checkpoint that verifies; never silently to "no checkpoint".
  const std::vector<std::string> names = ListCheckpoints(dir);
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    if (!ReadManifest(dir + "/" + *it).ok()) continue;
    if (note != nullptr) *note = absl::StrCat(problem, "; using the newest complete checkpoint, ", *it);
    return dir + "/" + *it;
  }
  if (names.empty() && problem == pointer + " is missing") {
    return absl::NotFoundError(absl::StrCat("no checkpoint in ", dir, " (", pointer, " is missing)"));
  }
  return absl::DataLossError(absl::StrCat(problem, ", and ", dir, " holds no complete checkpoint to fall back on",
                                          names.empty() ? "" : " (every manifest fails to verify)"));
}

absl::StatusOr<CheckpointManifest> ReadManifest(const std::string& path) {
  const std::string file = path + "/" + kManifestFile;
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("checkpoint manifest ", file, " is missing"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  const size_t header = sizeof(kManifestMagic) + sizeof(uint32_t);
  LRKV_REQUIRE_CODE(absl::StatusCode::kDataLoss,
                    bytes.size() >= header && std::memcmp(bytes.data(), kManifestMagic, sizeof(kManifestMagic)) == 0,
                    "checkpoint manifest ", file, " is not an lrkv manifest (bad magic)");
  uint32_t crc = 0;
  std::memcpy(&crc, bytes.data() + sizeof(kManifestMagic), sizeof(crc));
  LRKV_REQUIRE_CODE(absl::StatusCode::kDataLoss, Crc32c(bytes.data() + header, bytes.size() - header) == crc,
                    "checkpoint manifest ", file, " is corrupted (CRC32C mismatch)");
  CheckpointManifest m;
  LRKV_REQUIRE_CODE(absl::StatusCode::kDataLoss, m.ParseFromArray(bytes.data() + header, int(bytes.size() - header)),
                    "checkpoint manifest ", file, " cannot be parsed");
  LRKV_REQUIRE(m.version() == kManifestVersion, "checkpoint manifest ", file, " has version ", m.version(),
               "; this build reads version ", kManifestVersion);
  return m;
}

absl::StatusOr<int64_t> LoadCheckpoint(Communicator& world, const std::string& path,
                                       const CheckpointManifest& manifest, std::vector<TensorBlock>& blocks) {
  std::map<std::string, const TensorRecord*> records;
  for (const TensorRecord& r : manifest.tensors()) records[r.name()] = &r;
  std::vector<Tensor> staged(blocks.size());
  int64_t bytes = 0;
  const absl::Status status = [&]() -> absl::Status {
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto it = records.find(blocks[i].name);
      LRKV_REQUIRE_CODE(absl::StatusCode::kNotFound, it != records.end(), "checkpoint ", path, " has no tensor ",
                        blocks[i].name);
      LRKV_TRY_ASSIGN(const int64_t n, StageBlock(path, *it->second, blocks[i], staged[i]));
      bytes += n;
    }
    return absl::OkStatus();
  }();
  // Nothing is written into a block until every rank has staged and verified all of its own.
  LRKV_TRY(AgreeOnStatus(world, status));
  for (size_t i = 0; i < blocks.size(); ++i) LRKV_TRY(blocks[i].data.CopyFrom(staged[i]));
  return bytes;
}

}  // namespace lrkv
