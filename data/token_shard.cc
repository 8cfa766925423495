#include "data/token_shard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/crc32c.h"
#include "runtime/durable_file.h"
#include "runtime/status.h"

namespace lrkv::data {
namespace {

// Header layout, in bytes. Fields are encoded one by one so the file format never depends on
// the compiler's struct layout or the host byte order.
constexpr size_t kOffVersion = 8, kOffDtype = 12, kOffCount = 16, kOffVocab = 24, kOffCrc = 28,
                 kOffTokenizer = 32;

void PutLE(unsigned char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint64_t GetLE(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

absl::Status IoError(const std::string& what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}

absl::StatusOr<std::vector<unsigned char>> ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return absl::NotFoundError(absl::StrCat("token shard ", path, ": no such file"));
    return IoError("cannot open token shard", path);
  }
  std::vector<unsigned char> bytes;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) bytes.reserve(static_cast<size_t>(st.st_size));
  unsigned char buf[1 << 16];
  while (true) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const absl::Status status = IoError("cannot read token shard", path);
      ::close(fd);
      return status;
    }
    if (r == 0) break;
    bytes.insert(bytes.end(), buf, buf + r);
  }
  ::close(fd);
  return bytes;
}

}  // namespace

absl::Status WriteTokenShard(const std::string& path, const std::vector<int32_t>& tokens,
                             int vocab_size, uint32_t tokenizer_fingerprint) {
  LRKV_REQUIRE(vocab_size > 0, "token shard ", path, ": vocab_size must be positive, got ",
               vocab_size);
  const uint32_t dtype = vocab_size <= 65536 ? kTokenDtypeU16 : kTokenDtypeU32;
  const int width = dtype == kTokenDtypeU16 ? 2 : 4;
  std::vector<unsigned char> bytes(kTokenShardHeaderBytes + tokens.size() * width, 0);
  unsigned char* payload = bytes.data() + kTokenShardHeaderBytes;
  for (size_t i = 0; i < tokens.size(); ++i) {
    LRKV_REQUIRE(tokens[i] >= 0 && tokens[i] < vocab_size, "token shard ", path, ": token ",
                 tokens[i], " at position ", i, " is outside the vocabulary [0, ", vocab_size, ")");
    PutLE(payload + i * width, static_cast<uint32_t>(tokens[i]), width);
  }
  unsigned char* h = bytes.data();
  std::memcpy(h, kTokenShardMagic, sizeof kTokenShardMagic);
  PutLE(h + kOffVersion, kTokenShardVersion, 4);
  PutLE(h + kOffDtype, dtype, 4);
  PutLE(h + kOffCount, tokens.size(), 8);
  PutLE(h + kOffVocab, static_cast<uint32_t>(vocab_size), 4);
  PutLE(h + kOffCrc, Crc32c(payload, tokens.size() * width), 4);
  PutLE(h + kOffTokenizer, tokenizer_fingerprint, 4);
  return WriteFileDurably(path, {{reinterpret_cast<const char*>(bytes.data()), bytes.size()}});
}

absl::StatusOr<TokenShard> ReadTokenShard(const std::string& path) {
  LRKV_TRY_ASSIGN(std::vector<unsigned char> bytes, ReadFile(path));
  const std::string where = absl::StrCat("token shard ", path, ": ");
  if (bytes.size() < kTokenShardHeaderBytes) {
    return absl::DataLossError(absl::StrCat(where, "truncated: file has ", bytes.size(),
                                            " bytes, shorter than the ", kTokenShardHeaderBytes,
                                            "-byte header"));
  }
  const unsigned char* h = bytes.data();
  if (std::memcmp(h, kTokenShardMagic, sizeof kTokenShardMagic) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, "not an lrkv token shard (bad magic)"));
  }
  const uint64_t version = GetLE(h + kOffVersion, 4);
  if (version != kTokenShardVersion) {
    return absl::InvalidArgumentError(absl::StrCat(where, "unknown version ", version,
                                                   " (this build reads version ",
                                                   kTokenShardVersion, ")"));
  }
  const uint64_t dtype = GetLE(h + kOffDtype, 4);
  if (dtype != kTokenDtypeU16 && dtype != kTokenDtypeU32) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "unknown dtype ", dtype, " (1 = uint16, 2 = uint32)"));
  }
  const uint64_t width = dtype == kTokenDtypeU16 ? 2 : 4;
  const uint64_t count = GetLE(h + kOffCount, 8);
  const uint64_t vocab = GetLE(h + kOffVocab, 4);
  const uint32_t stored_crc = static_cast<uint32_t>(GetLE(h + kOffCrc, 4));
  // Compare without computing header + count * width, which a garbage count could overflow.
  const uint64_t payload_bytes = bytes.size() - kTokenShardHeaderBytes;
  if (payload_bytes % width != 0 || payload_bytes / width != count) {
    const bool overflow =
        count > (std::numeric_limits<uint64_t>::max() - kTokenShardHeaderBytes) / width;
    const std::string expected = overflow ? std::string("more than 2^64")
                                          : absl::StrCat(kTokenShardHeaderBytes + count * width);
    return absl::DataLossError(absl::StrCat(where, "truncated: expected ", expected,
                                            " bytes, found ", bytes.size(), " (header says ", count,
                                            " tokens of ", width, " bytes)"));
  }
  if (vocab == 0 || vocab > static_cast<uint64_t>(std::numeric_limits<int>::max()) ||
      (dtype == kTokenDtypeU16 && vocab > 65536)) {
    return absl::DataLossError(
        absl::StrCat(where, "corrupted: invalid vocab_size ", vocab, " for dtype ", dtype));
  }
  const unsigned char* payload = h + kTokenShardHeaderBytes;
  const uint32_t crc = Crc32c(payload, payload_bytes);
  if (crc != stored_crc) {
    return absl::DataLossError(absl::StrCat(
        where, absl::StrFormat("corrupted: crc32c of the payload is 0x%08x, header says 0x%08x",
                               crc, stored_crc)));
  }
  TokenShard shard;
  shard.vocab_size = static_cast<int>(vocab);
  shard.tokenizer_fingerprint = static_cast<uint32_t>(GetLE(h + kOffTokenizer, 4));
  shard.tokens.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t t = GetLE(payload + i * width, static_cast<int>(width));
    if (t >= vocab) {
      return absl::DataLossError(
          absl::StrCat(where, "token ", t, " at position ", i, " is >= vocab_size ", vocab));
    }
    shard.tokens[i] = static_cast<int32_t>(t);
  }
  return shard;
}

}  // namespace lrkv::data
