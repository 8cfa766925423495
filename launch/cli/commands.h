// The subcommands of the `lrkv` binary. Each parses nothing itself: main() has already parsed the
// Abseil flags; `config_overrides` are the --model.X=V / --train.X=V / --parallel.X=V arguments.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "parallel/mpi_communicator.h"

namespace lrkv {

using ConfigOverrides = std::vector<std::pair<std::string, std::string>>;
// Prints the analytic cost of each config (with `overrides` applied); format "table" or "json" (one
// object per line). `layout` ("tp2,pp2,dp2", any subset and order; empty: none) adds the per-rank
// figures of that layout; `memory` the memory model's bytes per rank of the largest stage
// (`lrkv memory`'s categories, as memory_<category>_bytes_per_rank).
absl::Status RunFlopsCommand(const std::vector<std::string>& configs, const std::string& format,
                             const std::string& layout, const ConfigOverrides& overrides, bool memory = false);

// `lrkv memory` (model/memory_model.h per rank; --search over layouts) reads its own --NAME=VALUE
// arguments and --model.X=V / --train.X=V / --parallel.X=V overrides.
absl::Status RunMemoryCommand(const std::vector<std::string>& args);

// `lrkv flops-compare` and `lrkv flops-project` read their own --NAME=VALUE arguments (--baseline
// repeats); `args` are those after the command word.
absl::Status RunFlopsCompareCommand(const std::vector<std::string>& args);
absl::Status RunFlopsProjectCommand(const std::vector<std::string>& args);

// `lrkv checkpoint inspect DIR`: the manifest (tensors, pieces, training state) in readable form.
absl::Status RunCheckpointInspect(const std::string& dir);

// `lrkv export` (a checkpoint's parameters -> one safetensors file and its model config as JSON)
// and `lrkv import` (a safetensors file -> a step-0 checkpoint that `train --resume` continues
// from) read their own --NAME=VALUE arguments (import also --model.X=V, --train.X=V overrides).
absl::Status RunExportCommand(const std::vector<std::string>& args);
absl::Status RunImportCommand(const std::vector<std::string>& args);

absl::Status RunTrainCommand(const ConfigOverrides& config_overrides, MpiCommunicator& world);
// `lrkv generate` (text from a prompt with the KV cache) and `lrkv eval` (loss and perplexity over
// a split) read their own --NAME=VALUE arguments and run under MPI like train.
absl::Status RunGenerateCommand(const std::vector<std::string>& args, MpiCommunicator& world);
absl::Status RunEvalCommand(const std::vector<std::string>& args, MpiCommunicator& world);
// `lrkv analyze heads`: the head-diversity diagnostic of a checkpoint (args after the word "heads").
absl::Status RunAnalyzeHeadsCommand(const std::vector<std::string>& args, MpiCommunicator& world);
// Replaces this process with the sibling binary lrkv-prepare-data, passing `argv` on; returns only
// on failure to start it.
absl::Status ExecPrepareData(char** argv);

}  // namespace lrkv
