// lrkv generate --checkpoint=DIR|--safetensors=FILE --prompt=TEXT|--prompts_file=FILE [--max_new_tokens=64]
//   [--temperature=1 --top_k=0 --top_p=1 --seed=0] [--tp=N] [--data_dir=DIR]
// Encodes the prompt with the run's tokenizer, prefills the KV cache with it, then samples one token
// at a time (model/sampling.h), printing the text as it grows: the prompt and its continuation on
// stdout, nothing else there; diagnostics on stderr. Under mpirun the ranks form one TP group
// (--tp defaults to the number of ranks); every rank sees the same logits and draws the same token.
// --prompts_file decodes one prompt per non-empty line as a batch, the sequences of different
// lengths in one cache, each step one token for every sequence; from 4 prompts on (decoding's
// few-row products, runtime/ops/packed_linear.h) the weights are packed for it. It prints one JSON
// line per prompt when all are done, in the file's order: {"prompt", "text" (the prompt and its
// continuation, as --prompt prints them), "new_tokens"}; progress goes to stderr.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/cli/inference_model.h"
#include "launch/cli/tokenizer_process.h"
#include "model/sampling.h"
#include "nlohmann/json.hpp"
#include "parallel/agreement.h"
#include "runtime/ops/packed_linear.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] =
    "lrkv generate --checkpoint=DIR|--safetensors=FILE --prompt=TEXT|--prompts_file=FILE [--max_new_tokens=64]\n"
    "              [--temperature=1] [--top_k=0] [--top_p=1] [--seed=0] [--tp=N] [--data_dir=DIR]";

struct GenerateArgs {
  InferenceSource source;
  std::string prompt, prompts_file, data_dir;
  bool has_prompt = false;
  int64_t max_new_tokens = 64, tp = 0;
  uint64_t seed = 0;
  SamplingOptions sampling;
};

absl::StatusOr<GenerateArgs> Parse(const std::vector<std::string>& args) {
  LRKV_TRY_ASSIGN(const NamedArgs named,
                  ParseNamedArgs(args,
                                 {"checkpoint", "safetensors", "prompt", "prompts_file", "max_new_tokens",
                                  "temperature", "top_k", "top_p", "seed", "tp", "data_dir"},
                                 kUsage));
  GenerateArgs g;
  for (const auto& [name, value] : named) {
    bool ok = true;
    if (name == "checkpoint") g.source.checkpoint = value;
    if (name == "safetensors") g.source.safetensors = value;
    if (name == "prompt") g.prompt = value, g.has_prompt = true;
    if (name == "prompts_file") g.prompts_file = value;
    if (name == "data_dir") g.data_dir = value;
    if (name == "max_new_tokens") ok = absl::SimpleAtoi(value, &g.max_new_tokens) && g.max_new_tokens >= 1;
    if (name == "tp") ok = absl::SimpleAtoi(value, &g.tp) && g.tp >= 1;
    if (name == "seed") ok = absl::SimpleAtoi(value, &g.seed);
    if (name == "top_k") ok = absl::SimpleAtoi(value, &g.sampling.top_k);
    if (name == "temperature") ok = absl::SimpleAtod(value, &g.sampling.temperature);
    if (name == "top_p") ok = absl::SimpleAtod(value, &g.sampling.top_p);
    LRKV_REQUIRE(ok, "--", name, "=", value, " is not a valid value (",
                 name == "max_new_tokens" || name == "tp" ? "a positive integer" : "a number", ")\nusage: ", kUsage);
  }
  LRKV_REQUIRE(!(g.has_prompt && !g.prompts_file.empty()), "give one of --prompt=TEXT and --prompts_file=FILE, not both");
  LRKV_REQUIRE(!g.prompts_file.empty() || (g.has_prompt && !g.prompt.empty()),
               "generate needs a non-empty --prompt=TEXT or a --prompts_file=FILE\nusage: ", kUsage);
  LRKV_TRY(ValidateSampling(g.sampling));
  return g;
}

// The last position's logits of `logits` (1, n, V).
absl::StatusOr<std::vector<double>> LastRow(const Tensor& logits) {
  const int64_t n = logits.dim(1), v = logits.dim(2);
  LRKV_TRY_ASSIGN(const Tensor host, logits.To(Device::kCpu, DType::kF64));
  const double* row = host.data<double>() + (n - 1) * v;
  return std::vector<double>(row, row + v);
}

// The prompts, one per non-empty line of `path` (a trailing carriage return dropped).
absl::StatusOr<std::vector<std::string>> ReadPrompts(const std::string& path) {
  std::ifstream in(path);
  LRKV_REQUIRE_CODE(absl::StatusCode::kNotFound, in.good(), "--prompts_file=", path, ": cannot be read");
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) prompts.push_back(line);
  }
  LRKV_REQUIRE(!prompts.empty(), "--prompts_file=", path, " holds no prompt (one per non-empty line)");
  return prompts;
}

// Every rank gets rank 0's token ids of each prompt.
absl::StatusOr<std::vector<std::vector<int32_t>>> ShareIds(MpiCommunicator& world,
                                                          std::vector<std::vector<int32_t>> ids) {
  LRKV_TRY_ASSIGN(Tensor count, Tensor::Empty({1}, DType::kI32));
  count.data<int32_t>()[0] = static_cast<int32_t>(ids.size());
  LRKV_TRY(world.Broadcast(count, 0));
  const int64_t n = count.data<int32_t>()[0];
  LRKV_TRY_ASSIGN(Tensor lengths, Tensor::Empty({n}, DType::kI32));
  int64_t total = 0;
  for (int64_t i = 0; i < n && world.rank() == 0; ++i) lengths.data<int32_t>()[i] = int32_t(ids[i].size());
  LRKV_TRY(world.Broadcast(lengths, 0));
  for (int64_t i = 0; i < n; ++i) total += lengths.data<int32_t>()[i];
  LRKV_TRY_ASSIGN(Tensor all, Tensor::Empty({total}, DType::kI32));
  int32_t* at = all.data<int32_t>();
  for (const auto& p : ids) at = std::copy(p.begin(), p.end(), at);
  LRKV_TRY(world.Broadcast(all, 0));
  ids.assign(n, {});
  at = all.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int32_t length = lengths.data<int32_t>()[i];
    ids[i].assign(at, at + length);
    at += length;
  }
  return ids;
}

// One prompt, printed as it grows.
absl::Status GenerateOne(const GenerateArgs& g, MpiCommunicator& world, InferenceModel& m, TokenizerProcess* tokenizer,
                         std::vector<int32_t> ids) {
  const bool lead = world.rank() == 0;
  const int64_t prompt_tokens = static_cast<int64_t>(ids.size());
  LRKV_TRY_ASSIGN(Tensor prompt, Tensor::Empty({1, prompt_tokens}, DType::kI32));
  std::copy(ids.begin(), ids.end(), prompt.data<int32_t>());
  const auto start = std::chrono::steady_clock::now();
  LRKV_TRY_ASSIGN(KvCache cache, m.model->NewCache(1, prompt_tokens + g.max_new_tokens));
  LRKV_TRY_ASSIGN(Tensor logits, m.model->Extend(cache, {0}, prompt));
  std::mt19937_64 rng(g.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::string printed;  // the text on stdout so far
  auto print = [&](bool final) -> absl::Status {
    if (!lead) return absl::OkStatus();
    LRKV_TRY_ASSIGN(const std::string text, tokenizer->Decode(ids));
    // A byte-fallback character still incomplete decodes as U+FFFD: wait for its other bytes.
    if ((!final && absl::EndsWith(text, "\xEF\xBF\xBD")) || !absl::StartsWith(text, printed)) return absl::OkStatus();
    std::fputs(text.c_str() + printed.size(), stdout);
    std::fflush(stdout);
    printed = text;
    return absl::OkStatus();
  };
  LRKV_TRY(print(false));
  for (int64_t i = 0; i < g.max_new_tokens; ++i) {
    // Every rank holds the same logits and draws the same number; rank 0's token is sent all the same.
    LRKV_TRY_ASSIGN(Tensor next, Tensor::Empty({1, 1}, DType::kI32));
    LRKV_TRY_ASSIGN(const std::vector<double> row, LastRow(logits));
    next.data<int32_t>()[0] = SampleToken(row, g.sampling, uniform(rng));
    LRKV_TRY(world.Broadcast(next, 0));
    ids.push_back(next.data<int32_t>()[0]);
    LRKV_TRY(print(i + 1 == g.max_new_tokens));
    if (i + 1 < g.max_new_tokens) {
      LRKV_TRY_ASSIGN(logits, m.model->Extend(cache, {0}, next));
    }
  }
  if (lead) {
    std::fputs("\n", stdout);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "lrkv generate: %lld tokens in %.2f s (%.1f tokens/s); KV cache %lld bytes per rank\n",
                 static_cast<long long>(g.max_new_tokens), s, g.max_new_tokens / s,
                 static_cast<long long>(cache.Bytes()));
  }
  return absl::OkStatus();
}

// Every prompt at once: each prefilled on its own, then a token for every sequence per step. The
// draws go in the prompts' order at each step.
absl::Status GenerateBatch(const GenerateArgs& g, MpiCommunicator& world, InferenceModel& m,
                           TokenizerProcess* tokenizer, const std::vector<std::string>& prompts,
                           std::vector<std::vector<int32_t>> ids) {
  const int64_t count = static_cast<int64_t>(ids.size());
  int64_t longest = 0;
  for (const auto& p : ids) longest = std::max<int64_t>(longest, p.size());
  m.model->params().set_pack_weights(count >= kPackedMinRows);
  const auto start = std::chrono::steady_clock::now();
  LRKV_TRY_ASSIGN(KvCache cache, m.model->NewCache(count, longest + g.max_new_tokens));
  std::mt19937_64 rng(g.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<std::vector<double>> rows(count);  // each sequence's last logits
  for (int64_t s = 0; s < count; ++s) {
    LRKV_TRY_ASSIGN(Tensor prompt, Tensor::Empty({1, int64_t(ids[s].size())}, DType::kI32));
    std::copy(ids[s].begin(), ids[s].end(), prompt.data<int32_t>());
    LRKV_TRY_ASSIGN(const Tensor logits, m.model->Extend(cache, {s}, prompt));
    LRKV_TRY_ASSIGN(rows[s], LastRow(logits));
  }
  std::vector<int64_t> seqs(count);
  for (int64_t s = 0; s < count; ++s) seqs[s] = s;
  const auto decoding = std::chrono::steady_clock::now();
  // Progress on stderr, every 32 steps and at the last: step, the batch's tokens/s, ETA.
  auto progress = [&](int64_t done) {
    if (world.rank() != 0 || (done % 32 != 0 && done != g.max_new_tokens)) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - decoding).count();
    std::fprintf(stderr, "lrkv generate: step %lld/%lld | %.1f tokens/s | ETA %.0fs\n", static_cast<long long>(done),
                 static_cast<long long>(g.max_new_tokens), count * done / std::max(s, 1e-9),
                 s / done * (g.max_new_tokens - done));
  };
  for (int64_t i = 0; i < g.max_new_tokens; ++i) {
    LRKV_TRY_ASSIGN(Tensor next, Tensor::Empty({count, 1}, DType::kI32));
    for (int64_t s = 0; s < count; ++s) next.data<int32_t>()[s] = SampleToken(rows[s], g.sampling, uniform(rng));
    LRKV_TRY(world.Broadcast(next, 0));
    for (int64_t s = 0; s < count; ++s) ids[s].push_back(next.data<int32_t>()[s]);
    progress(i + 1);
    if (i + 1 == g.max_new_tokens) break;
    LRKV_TRY_ASSIGN(const Tensor logits, m.model->Extend(cache, seqs, next));  // (count, 1, V)
    LRKV_TRY_ASSIGN(const Tensor host, logits.To(Device::kCpu, DType::kF64));
    const int64_t v = logits.dim(2);
    for (int64_t s = 0; s < count; ++s) rows[s].assign(host.data<double>() + s * v, host.data<double>() + (s + 1) * v);
  }
  if (world.rank() != 0) return absl::OkStatus();
  for (int64_t s = 0; s < count; ++s) {
    LRKV_TRY_ASSIGN(const std::string text, tokenizer->Decode(ids[s]));
    const nlohmann::ordered_json line = {
        {"prompt", prompts[s]}, {"text", text}, {"new_tokens", g.max_new_tokens}};
    std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  std::fflush(stdout);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr,
               "lrkv generate: %lld prompts, %lld tokens each in %.2f s (%.1f tokens/s); KV cache %lld bytes per "
               "rank; weights %s\n",
               static_cast<long long>(count), static_cast<long long>(g.max_new_tokens), s,
               count * g.max_new_tokens / s, static_cast<long long>(cache.Bytes()),
               count >= kPackedMinRows ? "packed" : "as stored");
  return absl::OkStatus();
}

}  // namespace

absl::Status RunGenerateCommand(const std::vector<std::string>& args, MpiCommunicator& world) {
  LRKV_TRY_ASSIGN(const GenerateArgs g, Parse(args));
  const int tp = g.tp > 0 ? static_cast<int>(g.tp) : world.size();
  LRKV_REQUIRE(tp == world.size(), "generate runs one tensor-parallel group: --tp (", tp,
               ") must equal the number of ranks (", world.size(), ")");
  LRKV_TRY_ASSIGN(InferenceModel m, LoadInferenceModel(world, g.source, tp, /*decoding=*/true));
  // Rank 0 reads and tokenizes (in a process of its own) and tells the others the prompts' ids.
  const bool lead = world.rank() == 0;
  std::unique_ptr<TokenizerProcess> tokenizer;
  std::vector<std::string> prompts = {g.prompt};
  std::vector<std::vector<int32_t>> ids;
  absl::Status started = [&]() -> absl::Status {
    if (!lead) return absl::OkStatus();
    if (!g.prompts_file.empty()) {
      LRKV_TRY_ASSIGN(prompts, ReadPrompts(g.prompts_file));
    }
    LRKV_TRY_ASSIGN(const std::string file, RunTokenizerFile(m.config, g.data_dir));
    LRKV_TRY_ASSIGN(tokenizer, TokenizerProcess::Start(file));
    const int64_t seq_len = m.config.model().seq_len();
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::string which = g.prompts_file.empty() ? "the prompt" : absl::StrCat("prompt ", i + 1);
      LRKV_TRY_ASSIGN(std::vector<int32_t> p, tokenizer->Encode(prompts[i]));
      const int64_t n = static_cast<int64_t>(p.size());
      LRKV_REQUIRE(n > 0, which, " encodes to no tokens");
      LRKV_REQUIRE(n + g.max_new_tokens <= seq_len, which, "'s ", n, " tokens and --max_new_tokens=",
                   g.max_new_tokens, " exceed the model's context of ", seq_len, " positions (model.seq_len)");
      ids.push_back(std::move(p));
    }
    return absl::OkStatus();
  }();
  LRKV_TRY(AgreeOnStatus(world, started));
  LRKV_TRY_ASSIGN(ids, ShareIds(world, std::move(ids)));
  if (lead) {
    int64_t tokens = 0;
    for (const auto& p : ids) tokens += p.size();
    std::fprintf(stderr, "lrkv generate: %s (step %lld), tp %d; %lld prompt(s), %lld tokens\n", m.source.c_str(),
                 static_cast<long long>(m.step), tp, static_cast<long long>(ids.size()),
                 static_cast<long long>(tokens));
  }
  if (g.prompts_file.empty()) return GenerateOne(g, world, m, tokenizer.get(), std::move(ids[0]));
  return GenerateBatch(g, world, m, tokenizer.get(), prompts, std::move(ids));
}

}  // namespace lrkv
