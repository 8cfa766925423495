// lrkv eval --checkpoint=DIR|--safetensors=FILE [--split=val|train] [--data_dir=DIR]
//   [--eval_batches=N] [--tp=N] [--format=table|json]
// The mean next-token loss and perplexity of a model over a whole split of its data (the first
// eval_batches x global_batch windows of model.seq_len tokens with --eval_batches, which is what
// the trainer evaluates), by the trainer's own evaluation (launch/train/evaluation.h); under mpirun
// the ranks beyond --tp split the windows.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "data/sampler.h"
#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/cli/inference_model.h"
#include "launch/train/evaluation.h"
#include "nlohmann/json.hpp"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] =
    "lrkv eval --checkpoint=DIR|--safetensors=FILE [--split=val|train] [--data_dir=DIR] [--eval_batches=N]\n"
    "          [--tp=N] [--format=table|json]";

}  // namespace

absl::Status RunEvalCommand(const std::vector<std::string>& args, MpiCommunicator& world) {
  LRKV_TRY_ASSIGN(const NamedArgs named,
                  ParseNamedArgs(args, {"checkpoint", "safetensors", "split", "data_dir", "eval_batches", "tp", "format"},
                                 kUsage));
  InferenceSource source;
  std::string split = "val", data_dir, format = "table";
  int64_t eval_batches = 0, tp = 1;
  for (const auto& [name, value] : named) {
    bool ok = true;
    if (name == "checkpoint") source.checkpoint = value;
    if (name == "safetensors") source.safetensors = value;
    if (name == "split") split = value, ok = value == "val" || value == "train";
    if (name == "data_dir") data_dir = value;
    if (name == "format") format = value, ok = value == "table" || value == "json";
    if (name == "eval_batches") ok = absl::SimpleAtoi(value, &eval_batches) && eval_batches >= 1;
    if (name == "tp") ok = absl::SimpleAtoi(value, &tp) && tp >= 1;
    LRKV_REQUIRE(ok, "--", name, "=", value, " is not a valid value\nusage: ", kUsage);
  }
  LRKV_TRY_ASSIGN(InferenceModel m, LoadInferenceModel(world, source, static_cast<int>(tp), /*decoding=*/false));
  const std::string dir = data_dir.empty() ? m.config.train().data_dir() : data_dir;
  uint32_t fingerprint = 0;
  LRKV_TRY_ASSIGN(const data::TokenBuffer tokens,
                  LoadTokenShard(dir + "/" + split + ".bin", m.config.model().vocab_size(), &fingerprint));
  LRKV_TRY_ASSIGN(const data::EvalSampler windows, data::EvalSampler::Create(tokens, m.config.model().seq_len()));
  // The trainer's evaluation over this launch's data-parallel ranks: by default every window.
  TrainConfig t = m.config.train();
  const int64_t dp = m.mesh->layout().dp, batch = t.global_batch();
  if (eval_batches == 0) eval_batches = (windows.num_windows() + batch - 1) / batch;
  t.set_eval_batches(static_cast<int32_t>(eval_batches));
  t.set_micro_batch(static_cast<int32_t>(std::max<int64_t>(1, batch / dp)));
  LRKV_TRY_ASSIGN(const double loss, Evaluate(*m.model, windows, t, *m.mesh));
  const int64_t used = std::min(eval_batches * batch, windows.num_windows()), seq = windows.seq_len();
  if (world.rank() != 0) return absl::OkStatus();
  if (format == "json") {
    nlohmann::ordered_json j;
    j["split"] = split, j["loss"] = loss, j["perplexity"] = std::exp(loss), j["tokens"] = used * seq;
    j["windows"] = used, j["seq_len"] = seq, j["source"] = m.source, j["step"] = m.step;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s split: loss %.6f, perplexity %.3f over %lld tokens (%lld windows of %lld); %s, step %lld\n",
                split.c_str(), loss, std::exp(loss), static_cast<long long>(used * seq), static_cast<long long>(used),
                static_cast<long long>(seq), m.source.c_str(), static_cast<long long>(m.step));
  }
  return absl::OkStatus();
}

}  // namespace lrkv
