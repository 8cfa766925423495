// CRC32C (Castagnoli), used to detect corrupted data files and checkpoints.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lrkv {

// CRC32C of `n` bytes at `data`. Pass a previous result as `crc` to extend it:
// Crc32c(ab) == Crc32c(b, Crc32c(a)). Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);

}  // namespace lrkv
