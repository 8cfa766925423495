// The lrkv command line: `lrkv COMMAND [flags]`. Config fields can be overridden on any command
// that takes --config with --model.FIELD=VALUE and --train.FIELD=VALUE.
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include <mpi.h>

#include "absl/flags/usage.h"
#include "launch/cli/commands.h"
#include "launch/cli/launch_env.h"
#include "parallel/agreement.h"
#include "runtime/cpu_target.h"

namespace {

constexpr char kUsage[] =
    "usage: lrkv COMMAND [flags]\n"
    "commands:\n"
    "  prepare-data  fetch a corpus, train the tokenizer, write token shards\n"
    "                  --corpus=brown --out=DIR [--vocab_size=8192]\n"
    "  flops         parameters, FLOPs per token and KV cache of configs, side by side\n"
    "                  --config=FILE [--config=FILE ...] [--layout=tpN,ppN,dpN] [--format=table|json]\n"
    "                  [--model.FIELD=VALUE ...]\n"
    "  memory        what each rank of a training job holds at its peak, by category; does it fit a GPU\n"
    "                  --config=FILE [--layout=tpN,ppN,dpN] [--zero1=true] [--format=table|json]\n"
    "                  [--gpu_memory=80GiB | --peak=h100|h200|a100] [--search=GPUS] [--train.FIELD=VALUE ...]\n"
    "  flops-compare training FLOPs a candidate run needs to reach each baseline's final metric\n"
    "                  --baseline=METRICS.jsonl|'GLOB' [--baseline=...] --candidate=METRICS.jsonl|'GLOB'\n"
    "                  [--metric=val_loss] [--out=PREFIX]   (writes PREFIX.csv, .json, .png)\n"
    "  flops-project total training FLOPs and GPU-hours of a candidate vs a baseline config\n"
    "                  --config=FILE --baseline=FILE --tokens=N [--steps_ratio=X | --steps_ratio_from=JSON\n"
    "                  [--steps_ratio_baseline=LABEL]]\n"
    "                  [--mfu=M --peak=FLOPS|h100|h200|a100|... [--gpus=G]] [--format=table|json]\n"
    "  checkpoint    inspect DIR: a checkpoint's manifest (tensors, pieces, training state)\n"
    "  export        a checkpoint's parameters as one safetensors file (+ FILE.config.json, the model config)\n"
    "                  --checkpoint=DIR --out=FILE.safetensors   (DIR: a checkpoint, or a directory's latest)\n"
    "  import        a safetensors file (as export writes it) as a step-0 checkpoint for train --resume\n"
    "                  --safetensors=FILE --config=FILE --out=CHECKPOINT_DIR [--model.FIELD=VALUE ...]\n"
    "  generate      text from a prompt, with the KV cache (mpirun -np N: tensor parallel over N ranks)\n"
    "                  --checkpoint=DIR|--safetensors=FILE --prompt=TEXT [--max_new_tokens=64 --temperature=1\n"
    "                  --top_k=0 --top_p=1 --seed=0] [--data_dir=DIR]   (--temperature=0: greedy)\n"
    "  eval          loss and perplexity over a whole split\n"
    "                  --checkpoint=DIR|--safetensors=FILE [--split=val|train --data_dir=DIR --eval_batches=N]\n"
    "                  [--tp=N] [--format=table|json]\n"
    "  analyze heads head diversity of a checkpoint's attention (effective rank of W_Q W_K^T per layer)\n"
    "                  --checkpoint=DIR|--safetensors=FILE [--format=table|json]\n"
    "  train         train a model\n"
    "                  --config=FILE [--steps=N --seed=S --data_dir=D --out_dir=O]\n"
    "                  [--dp=N --tp=N --pp=N --zero1 --micro_batches=M --print_layout]   (mpirun -np dp*pp*tp)\n"
    "                  [--checkpoint_dir=DIR --save_every=N --resume | --overwrite_checkpoints] [--peak=DEVICE]\n"
    "                  [--model.FIELD=VALUE ...] [--train.FIELD=VALUE ...]\n"
    "run `lrkv COMMAND --helpfull` for every flag.";

bool IsConfigOverride(const char* arg) {
  return std::strncmp(arg, "--model.", 8) == 0 || std::strncmp(arg, "--train.", 8) == 0 ||
         std::strncmp(arg, "--parallel.", 11) == 0;
}

// Runs `lrkv COMMAND` (train, generate, eval) inside MPI (a plain launch is a world of one). A rank
// that fails ends the whole job at once with MPI_Abort, so no other rank waits forever in a
// collective.
int RunUnderMpi(const char* command, const std::function<absl::Status(lrkv::MpiCommunicator&)>& body, int* argc,
                char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  {
    lrkv::MpiCommunicator world(MPI_COMM_WORLD, "world");
    rank = world.rank(), size = world.size();
    // Refuses a launch whose MPI world is not the one mpirun / srun started, before any work.
    absl::Status status = lrkv::SetUpLaunch(world.comm(), command);
    if (status.ok()) status = body(world);
    if (!status.ok()) {
      std::fprintf(stderr, "lrkv %s [rank %d of %d]: error: %s\n", command, rank, size,
                   std::string(status.message()).c_str());
      std::fflush(stderr);
      // Checks every rank failed together end in order; anything else may leave ranks waiting.
      if (lrkv::StoppedOnEveryRank(status)) {
        MPI_Finalize();
        return 1;
      }
      MPI_Abort(MPI_COMM_WORLD, 1);
      return 1;
    }
  }
  MPI_Finalize();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else: a binary built for another CPU would otherwise die of SIGILL somewhere in
  // its first vectorized loop, each rank on its own, naming nothing.
  if (const absl::Status cpu = lrkv::CheckCpuRunsThisBuild(); !cpu.ok()) {
    std::fprintf(stderr, "lrkv: error: %s\n", std::string(cpu.message()).c_str());
    return 1;
  }
  absl::SetProgramUsageMessage(kUsage);
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "%s\n", kUsage);
    return argc < 2 ? 2 : (std::strcmp(argv[1], "--help") == 0 ? 0 : 2);
  }
  const std::string command = argv[1];
  if (command == "flops") {
    // --config may repeat, which Abseil flags do not allow: this command reads its own arguments.
    std::vector<std::string> configs;
    std::string format = "table", layout;
    bool memory = false;
    lrkv::ConfigOverrides overrides;
    for (int i = 2; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg.rfind("--config=", 0) == 0) {
        configs.push_back(arg.substr(9));
      } else if (arg.rfind("--format=", 0) == 0) {
        format = arg.substr(9);
      } else if (arg.rfind("--layout=", 0) == 0) {
        layout = arg.substr(9);
      } else if (arg == "--memory" || arg == "--memory=true") {
        memory = true;
      } else if (IsConfigOverride(argv[i]) && arg.find('=') != std::string::npos) {
        overrides.emplace_back(arg.substr(2, arg.find('=') - 2), arg.substr(arg.find('=') + 1));
      } else {
        std::fprintf(stderr, "lrkv flops: unknown argument '%s'\n%s\n", argv[i], kUsage);
        return 2;
      }
    }
    const absl::Status s = lrkv::RunFlopsCommand(configs, format, layout, overrides, memory);
    if (s.ok()) return 0;
    std::fprintf(stderr, "lrkv flops: error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (command == "flops-compare" || command == "flops-project") {
    const std::vector<std::string> args(argv + 2, argv + argc);
    const absl::Status s =
        command == "flops-compare" ? lrkv::RunFlopsCompareCommand(args) : lrkv::RunFlopsProjectCommand(args);
    if (s.ok()) return 0;
    std::fprintf(stderr, "lrkv %s: error: %s\n", command.c_str(), std::string(s.message()).c_str());
    return 1;
  }
  if (command == "generate" || command == "eval") {
    const std::vector<std::string> args(argv + 2, argv + argc);
    return RunUnderMpi(
        command.c_str(),
        [&](lrkv::MpiCommunicator& world) {
          return command == "generate" ? lrkv::RunGenerateCommand(args, world) : lrkv::RunEvalCommand(args, world);
        },
        &argc, &argv);
  }
  if (command == "analyze") {
    if (argc < 3 || std::strcmp(argv[2], "heads") != 0) {
      std::fprintf(stderr, "usage: lrkv analyze heads --checkpoint=DIR|--safetensors=FILE [--format=table|json]\n");
      return 2;
    }
    const std::vector<std::string> args(argv + 3, argv + argc);
    return RunUnderMpi(
        "analyze", [&](lrkv::MpiCommunicator& world) { return lrkv::RunAnalyzeHeadsCommand(args, world); }, &argc,
        &argv);
  }
  if (command == "memory") {
    const absl::Status s = lrkv::RunMemoryCommand(std::vector<std::string>(argv + 2, argv + argc));
    if (s.ok()) return 0;
    std::fprintf(stderr, "lrkv memory: error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (command == "export" || command == "import") {
    const std::vector<std::string> args(argv + 2, argv + argc);
    const absl::Status s = command == "export" ? lrkv::RunExportCommand(args) : lrkv::RunImportCommand(args);
    if (s.ok()) return 0;
    std::fprintf(stderr, "lrkv %s: error: %s\n", command.c_str(), std::string(s.message()).c_str());
    return 1;
  }
  if (command == "checkpoint") {
    if (argc != 4 || std::strcmp(argv[2], "inspect") != 0) {
      std::fprintf(stderr, "usage: lrkv checkpoint inspect DIR\n");
      return 2;
    }
    const absl::Status s = lrkv::RunCheckpointInspect(argv[3]);
    if (s.ok()) return 0;
    std::fprintf(stderr, "lrkv checkpoint: error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (command == "prepare-data") {
    const absl::Status s = lrkv::ExecPrepareData(argv);
    std::fprintf(stderr, "lrkv prepare-data: error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // --model.X=V / --train.X=V are config fields, not Abseil flags: take them out before parsing.
  lrkv::ConfigOverrides overrides;
  std::vector<char*> rest = {argv[0]};
  for (int i = 2; i < argc; ++i) {
    if (!IsConfigOverride(argv[i])) {
      rest.push_back(argv[i]);
      continue;
    }
    const char* eq = std::strchr(argv[i], '=');
    if (eq == nullptr) {
      std::fprintf(stderr, "lrkv: %s needs a value: %s=VALUE\n", argv[i], argv[i]);
      return 2;
    }
    overrides.emplace_back(std::string(static_cast<const char*>(argv[i]) + 2, eq), std::string(eq + 1));
  }
  const std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(rest.size()), rest.data());
  if (positional.size() > 1) {
    std::fprintf(stderr, "lrkv %s: unexpected argument '%s'\n", command.c_str(), positional[1]);
    return 2;
  }
  if (command == "train") {
    return RunUnderMpi(
        "train", [&](lrkv::MpiCommunicator& world) { return lrkv::RunTrainCommand(overrides, world); }, &argc, &argv);
  }
  std::fprintf(stderr, "lrkv: unknown command '%s'\n%s\n", command.c_str(), kUsage);
  return 2;
}
