// Binary token shards: the on-disk form of a tokenised corpus split (train.bin, val.bin).
// Format (little-endian, see data/README.md): a 64-byte header, then token_count tokens as
// uint16 or uint32. Readers validate the header, size, checksum and token range, so a damaged
// or foreign file fails loudly instead of silently training on garbage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lrkv::data {

inline constexpr char kTokenShardMagic[8] = {'L', 'R', 'K', 'V', 'T', 'O', 'K', '\0'};
inline constexpr uint32_t kTokenShardVersion = 1;
inline constexpr size_t kTokenShardHeaderBytes = 64;
inline constexpr uint32_t kTokenDtypeU16 = 1;
inline constexpr uint32_t kTokenDtypeU32 = 2;

struct TokenShard {
  std::vector<int32_t> tokens;
  int vocab_size = 0;
  // CRC32C of the tokenizer.model that produced the tokens; 0 when unknown (a shard written before
  // the field existed). Checkpoints keep it, so a run never resumes onto another tokenizer's ids.
  uint32_t tokenizer_fingerprint = 0;
};

// Writes `tokens` (each in [0, vocab_size)) to `path` atomically: a `path.tmp` file is written,
// fsynced and renamed, so readers never see a half-written shard. Tokens are stored as uint16
// when vocab_size <= 65536, else uint32.
absl::Status WriteTokenShard(const std::string& path, const std::vector<int32_t>& tokens,
                             int vocab_size, uint32_t tokenizer_fingerprint = 0);

// Reads and fully validates a shard. Errors name the file and the problem: NotFound for a
// missing file, InvalidArgument for a file that is not a shard this code understands, DataLoss
// for a truncated or corrupted one.
absl::StatusOr<TokenShard> ReadTokenShard(const std::string& path);

}  // namespace lrkv::data
