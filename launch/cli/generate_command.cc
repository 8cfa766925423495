// lrkv generate --checkpoint=DIR|--safetensors=FILE --prompt=TEXT [--max_new_tokens=64]
//   [--temperature=1 --top_k=0 --top_p=1 --seed=0] [--tp=N] [--data_dir=DIR]
// Encodes the prompt with the run's tokenizer, prefills the KV cache with it, then samples one token
// at a time (model/sampling.h), printing the text as it grows: the prompt and its continuation on
// stdout, nothing else there; diagnostics on stderr. Under mpirun the ranks form one TP group
// (--tp defaults to the number of ranks); every rank sees the same logits and draws the same token.
#include <chrono>
#include <cstdio>
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
#include "parallel/agreement.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] =
    "lrkv generate --checkpoint=DIR|--safetensors=FILE --prompt=TEXT [--max_new_tokens=64] [--temperature=1]\n"
    "              [--top_k=0] [--top_p=1] [--seed=0] [--tp=N] [--data_dir=DIR]";

struct GenerateArgs {
  InferenceSource source;
  std::string prompt, data_dir;
  bool has_prompt = false;
  int64_t max_new_tokens = 64, tp = 0;
  uint64_t seed = 0;
  SamplingOptions sampling;
};

absl::StatusOr<GenerateArgs> Parse(const std::vector<std::string>& args) {
  LRKV_TRY_ASSIGN(const NamedArgs named,
                  ParseNamedArgs(args,
                                 {"checkpoint", "safetensors", "prompt", "max_new_tokens", "temperature", "top_k",
                                  "top_p", "seed", "tp", "data_dir"},
                                 kUsage));
  GenerateArgs g;
  for (const auto& [name, value] : named) {
    bool ok = true;
    if (name == "checkpoint") g.source.checkpoint = value;
    if (name == "safetensors") g.source.safetensors = value;
    if (name == "prompt") g.prompt = value, g.has_prompt = true;
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
  LRKV_REQUIRE(g.has_prompt && !g.prompt.empty(), "generate needs a non-empty --prompt=TEXT\nusage: ", kUsage);
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

}  // namespace

absl::Status RunGenerateCommand(const std::vector<std::string>& args, MpiCommunicator& world) {
  LRKV_TRY_ASSIGN(const GenerateArgs g, Parse(args));
  const int tp = g.tp > 0 ? static_cast<int>(g.tp) : world.size();
  LRKV_REQUIRE(tp == world.size(), "generate runs one sequence: --tp (", tp, ") must equal the number of ranks (",
               world.size(), ")");
  LRKV_TRY_ASSIGN(InferenceModel m, LoadInferenceModel(world, g.source, tp, /*decoding=*/true));
  // Rank 0 tokenizes (in a process of its own) and tells the others the prompt's ids.
  const bool lead = world.rank() == 0;
  std::unique_ptr<TokenizerProcess> tokenizer;
  std::vector<int32_t> ids;
  absl::Status started = [&]() -> absl::Status {
    if (!lead) return absl::OkStatus();
    LRKV_TRY_ASSIGN(const std::string file, RunTokenizerFile(m.config, g.data_dir));
    LRKV_TRY_ASSIGN(tokenizer, TokenizerProcess::Start(file));
    LRKV_TRY_ASSIGN(ids, tokenizer->Encode(g.prompt));
    const int64_t seq_len = m.config.model().seq_len(), n = static_cast<int64_t>(ids.size());
    LRKV_REQUIRE(n > 0, "the prompt encodes to no tokens");
    LRKV_REQUIRE(n + g.max_new_tokens <= seq_len, "the prompt's ", n, " tokens and --max_new_tokens=",
                 g.max_new_tokens, " exceed the model's context of ", seq_len, " positions (model.seq_len)");
    return absl::OkStatus();
  }();
  LRKV_TRY(AgreeOnStatus(world, started));
  LRKV_TRY_ASSIGN(Tensor count, Tensor::Empty({1}, DType::kI32));
  count.data<int32_t>()[0] = static_cast<int32_t>(ids.size());
  LRKV_TRY(world.Broadcast(count, 0));
  const int64_t prompt_tokens = count.data<int32_t>()[0];
  LRKV_TRY_ASSIGN(Tensor prompt, Tensor::Empty({1, prompt_tokens}, DType::kI32));
  if (lead) std::copy(ids.begin(), ids.end(), prompt.data<int32_t>());
  LRKV_TRY(world.Broadcast(prompt, 0));
  ids.assign(prompt.data<int32_t>(), prompt.data<int32_t>() + prompt_tokens);
  if (lead) {
    std::fprintf(stderr, "lrkv generate: %s (step %lld), tp %d; prompt %lld tokens\n", m.source.c_str(),
                 static_cast<long long>(m.step), tp, static_cast<long long>(prompt_tokens));
  }
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

}  // namespace lrkv
