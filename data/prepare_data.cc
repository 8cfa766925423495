#include "data/prepare_data.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/brown_corpus.h"
#include "data/token_shard.h"
#include "nlohmann/json.hpp"
#include "runtime/crc32c.h"
#include "runtime/durable_file.h"
#include "data/tokenizer.h"
#include "runtime/hash.h"
#include "runtime/status.h"

namespace lrkv::data {
namespace {

namespace fs = std::filesystem;

struct Paths {
  explicit Paths(const std::string& dir)
      : train_txt(dir + "/train.txt"),
        model_prefix(dir + "/tokenizer"),
        model(dir + "/tokenizer.model"),
        train_bin(dir + "/train.bin"),
        val_bin(dir + "/val.bin"),
        meta(dir + "/meta.json") {}
  std::string train_txt, model_prefix, model, train_bin, val_bin, meta;
};

class Stopwatch {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status WriteText(const std::string& path, const std::string& text) { return WriteFileDurably(path, text); }

// True when out_dir holds the complete output of a run with these options. meta.json is written
// last, so its presence (with matching options) marks a finished run.
bool AlreadyPrepared(const PrepareDataOptions& o, const Paths& p) {
  const absl::StatusOr<std::string> text = ReadText(p.meta);
  if (!text.ok()) return false;
  const nlohmann::json meta = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!meta.is_object() || meta.value("corpus", "") != o.corpus || meta.value("vocab_size", -1) != o.vocab_size ||
      meta.value("val_fraction", -1.0) != o.val_fraction || meta.value("seed", uint64_t(0)) != o.seed) {
    return false;
  }
  const absl::StatusOr<Tokenizer> tok = Tokenizer::Load(p.model);
  if (!tok.ok() || tok->vocab_size() != o.vocab_size) return false;
  for (const std::string& shard_path : {p.train_bin, p.val_bin}) {
    const absl::StatusOr<TokenShard> shard = ReadTokenShard(shard_path);
    if (!shard.ok()) {
      std::printf("[data] redoing: %s\n", shard.status().ToString().c_str());
      return false;
    }
    if (shard->vocab_size != o.vocab_size) return false;
    if (shard->tokenizer_fingerprint == 0) {
      std::printf("[data] redoing: %s has no tokenizer fingerprint (written by an older lrkv)\n", shard_path.c_str());
      return false;
    }
  }
  return true;
}

// Deterministic split by document: documents are ranked by a seeded hash of their name and the
// first k = round(val_fraction * n) (at least 1, at most n - 1) go to validation. Depends only on
// the names and the seed, not on the order the files were listed in.
std::vector<bool> ChooseValidation(const std::vector<Document>& docs, double val_fraction,
                                   uint64_t seed) {
  std::vector<std::pair<uint64_t, size_t>> ranked;
  for (size_t i = 0; i < docs.size(); ++i) {
    uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a of the name, then mixed with the seed.
    for (const unsigned char c : docs[i].name) h = (h ^ c) * 0x100000001B3ull;
    ranked.push_back({HashCombine(seed, h), i});
  }
  std::sort(ranked.begin(), ranked.end());
  const size_t n = docs.size();
  const size_t k =
      std::clamp<size_t>(static_cast<size_t>(std::llround(val_fraction * n)), 1, n - 1);
  std::vector<bool> is_val(n, false);
  for (size_t i = 0; i < k; ++i) is_val[ranked[i].second] = true;
  return is_val;
}

struct Entropies {
  double train_entropy;      // H(p), p = train unigram distribution.
  double val_cross_entropy;  // -mean log q(val token), q = add-one smoothed train unigram.
};

Entropies UnigramEntropies(const std::vector<int32_t>& train, const std::vector<int32_t>& val,
                           int vocab_size) {
  std::vector<int64_t> counts(vocab_size, 0);
  for (const int32_t t : train) ++counts[t];
  const double n = static_cast<double>(train.size());
  double h = 0;
  for (const int64_t c : counts) {
    if (c > 0) h -= (c / n) * std::log(c / n);
  }
  double ce = 0;
  const double denom = n + vocab_size;
  for (const int32_t t : val) ce -= std::log((counts[t] + 1) / denom);
  return {h, val.empty() ? 0.0 : ce / static_cast<double>(val.size())};
}

}  // namespace

absl::Status PrepareData(const PrepareDataOptions& o) {
  LRKV_REQUIRE(o.corpus == "brown", "prepare-data: unknown corpus \"", o.corpus,
               "\" (known corpora: brown)");
  LRKV_REQUIRE(!o.out_dir.empty(), "prepare-data: out_dir is empty");
  LRKV_REQUIRE(o.vocab_size >= 300 && o.vocab_size <= 1 << 20,
               "prepare-data: vocab_size must be in [300, 1048576] (byte fallback alone takes ",
               "259 ids), got ", o.vocab_size);
  LRKV_REQUIRE(o.val_fraction > 0 && o.val_fraction < 1,
               "prepare-data: val_fraction must be in (0, 1), got ", o.val_fraction);
  const Paths p(o.out_dir);
  if (AlreadyPrepared(o, p)) {
    std::printf("data already prepared in %s\n", o.out_dir.c_str());
    std::fflush(stdout);
    return absl::OkStatus();
  }
  const Stopwatch total;
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", o.out_dir, ": ", ec.message()));
  fs::remove(p.meta, ec);  // From here on the directory is incomplete until meta.json is back.

  const std::string cache = o.cache_dir.empty() ? o.out_dir + "/cache" : o.cache_dir;
  std::printf("[data] loading corpus %s (cache %s)\n", o.corpus.c_str(), cache.c_str());
  std::fflush(stdout);
  LRKV_TRY_ASSIGN(std::vector<Document> docs, LoadBrownCorpus(cache));
  LRKV_REQUIRE(docs.size() >= 2, "prepare-data: corpus ", o.corpus, " has ", docs.size(),
               " documents; a train/validation split needs at least 2");
  for (Document& d : docs) d.text = StripBrownTags(d.text);
  const std::vector<bool> is_val = ChooseValidation(docs, o.val_fraction, o.seed);
  std::string train_text;
  int64_t n_train_docs = 0, n_val_docs = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (is_val[i]) {
      ++n_val_docs;
    } else {
      ++n_train_docs;
      train_text += docs[i].text;
    }
  }
  LRKV_TRY(WriteText(p.train_txt, train_text));
  std::printf("[data] %zu documents: %lld train, %lld validation; wrote %s (%zu bytes)\n",
              docs.size(), static_cast<long long>(n_train_docs), static_cast<long long>(n_val_docs),
              p.train_txt.c_str(), train_text.size());

  std::printf("[data] training BPE tokenizer, vocab %d ...\n", o.vocab_size);
  std::fflush(stdout);
  const Stopwatch train_clock;
  LRKV_TRY(Tokenizer::Train(p.train_txt, o.vocab_size, p.model_prefix));
  LRKV_TRY_ASSIGN(const Tokenizer tok, Tokenizer::Load(p.model));
  LRKV_REQUIRE(tok.vocab_size() == o.vocab_size, "prepare-data: trained tokenizer has ",
               tok.vocab_size(), " pieces, asked for ", o.vocab_size);
  std::printf("[data] wrote %s in %.1f s\n", p.model.c_str(), train_clock.seconds());

  std::printf("[data] encoding ...\n");
  std::fflush(stdout);
  std::vector<int32_t> train, val;
  for (size_t i = 0; i < docs.size(); ++i) {
    std::vector<int32_t>& dst = is_val[i] ? val : train;
    const std::vector<int32_t> ids = tok.Encode(docs[i].text);
    dst.insert(dst.end(), ids.begin(), ids.end());
    dst.push_back(tok.eos_id());  // Documents are concatenated; eos marks each boundary.
  }
  // The shards carry the tokenizer's fingerprint, so training can tell ids of another tokenizer apart.
  LRKV_TRY_ASSIGN(const std::string model_bytes, ReadText(p.model));
  const uint32_t fingerprint = std::max<uint32_t>(1, Crc32c(model_bytes.data(), model_bytes.size()));
  LRKV_TRY(WriteTokenShard(p.train_bin, train, o.vocab_size, fingerprint));
  LRKV_TRY(WriteTokenShard(p.val_bin, val, o.vocab_size, fingerprint));
  std::printf("[data] wrote %s (%zu tokens) and %s (%zu tokens)\n", p.train_bin.c_str(),
              train.size(), p.val_bin.c_str(), val.size());

  const Entropies e = UnigramEntropies(train, val, o.vocab_size);
  nlohmann::ordered_json meta;
  meta["corpus"] = o.corpus;
  meta["vocab_size"] = o.vocab_size;
  meta["val_fraction"] = o.val_fraction;
  meta["seed"] = o.seed;
  meta["eos_id"] = tok.eos_id();
  meta["documents"] = {{"train", n_train_docs}, {"val", n_val_docs}};
  meta["tokens"] = {{"train", train.size()}, {"val", val.size()}};
  meta["tokenizer_fingerprint"] = fingerprint;
  meta["unigram_entropy_nats"] = e.train_entropy;
  meta["val_unigram_cross_entropy_nats"] = e.val_cross_entropy;
  LRKV_TRY(WriteText(p.meta, meta.dump(2) + "\n"));
  std::printf(
      "[data] wrote %s: unigram entropy %.4f nats, val unigram cross-entropy %.4f nats "
      "(%.1f s total)\n",
      p.meta.c_str(), e.train_entropy, e.val_cross_entropy, total.seconds());
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace lrkv::data
