// Writes one PyTorch reference case (see tests/reference/README.md): builds the model of a config
// with random weights, runs forward and backward on random tokens, and dumps config.json, params/,
// tokens, targets, logits, loss and grads/ for compare_case.py.
//   dump_case --config=FILE --out=DIR [--batch=2] [--seed=7]
//   dump_case --params=FILE.safetensors [--config=FILE] --out=DIR ...   the weights of `lrkv export`
//     instead of random ones; the config defaults to the one in the file's metadata.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "launch/formats/model_weights.h"
#include "model/attention/variant_registry.h"
#include "model/config.h"
#include "model/decoder.h"
#include "runtime/status.h"
#include "runtime/npy.h"
#include "tests/testing/tensor_testing.h"

ABSL_FLAG(std::string, config, "", "model config (text-format RunConfig)");
ABSL_FLAG(std::string, out, "", "case directory to write");
ABSL_FLAG(int, batch, 2, "sequences");
ABSL_FLAG(uint64_t, seed, 7, "init and token seed");
ABSL_FLAG(std::string, params, "", "weights file (lrkv export) to use instead of the random init");

namespace lrkv {
namespace {

const char* Name(MlpActivation a) { return a == SWIGLU ? "swiglu" : a == RELU_SQUARED ? "relu2" : "gelu"; }

// The reference's config dict (tests/reference/torch_reference.py): the shared fields by the
// reference's names, then the variant's own fields (its registry entry's own_fields) as protobuf
// writes them in JSON, every field present.
absl::StatusOr<std::string> ConfigJson(const ModelConfig& m) {
  LRKV_TRY_ASSIGN(const std::string proto_json, ModelConfigJson(m));
  const nlohmann::json all = nlohmann::json::parse(proto_json);
  nlohmann::ordered_json j;
  j["vocab_size"] = m.vocab_size(), j["d_model"] = m.d_model(), j["n_layers"] = m.n_layers();
  j["n_heads"] = m.n_heads(), j["d_head"] = HeadDim(m), j["attention"] = AttentionKindName(m.attention());
  for (const std::string& field : VariantOf(m).own_fields) j[field] = all.at(field);
  j["kv_heads"] = AttentionKvHeads(m);
  j["d_ff"] = m.d_ff(), j["activation"] = Name(m.activation());
  j["norm"] = m.norm() == LAYERNORM ? "layernorm" : "rmsnorm", j["norm_eps"] = m.norm_eps();
  j["qk_norm"] = m.qk_norm(), j["rope_theta"] = m.rope_theta(), j["tie_embeddings"] = m.tie_embeddings();
  j["seq_len"] = m.seq_len(), j["dtype"] = "f32";
  return j.dump() + "\n";
}

absl::Status Run() {
  const std::string dir = absl::GetFlag(FLAGS_out);
  LRKV_REQUIRE(!dir.empty(), "--out is required");
  const std::string weights = absl::GetFlag(FLAGS_params);
  std::optional<SafetensorsReader> file;
  if (!weights.empty()) {
    LRKV_TRY_ASSIGN(file, SafetensorsReader::Open(weights));
  }
  RunConfig config;
  if (file && absl::GetFlag(FLAGS_config).empty()) {
    LRKV_TRY_ASSIGN(config, RunConfigFromMetadata(*file));
  } else {
    LRKV_TRY_ASSIGN(config, LoadRunConfig(absl::GetFlag(FLAGS_config)));
  }
  FillDefaults(config);
  LRKV_TRY(ValidateModelConfig(config.model()));
  const ModelConfig& m = config.model();
  LRKV_TRY_ASSIGN(auto model, Decoder::Create(m));
  LRKV_TRY(model->params().Initialize(absl::GetFlag(FLAGS_seed)));
  if (file) LRKV_TRY(ReadModelParameters(*file, model->params(), "the model of its config"));
  // Random init of the norm gains too, so that the comparison exercises their gradients.
  for (const auto& p : model->params().all()) {
    if (p->spec.role == ParamRole::kNorm && !file) {
      const Tensor r = testing::Random(p->spec.shape, 11, DType::kF32);
      for (int64_t i = 0; i < r.numel(); ++i) p->value.data<float>()[i] = 1.0f + 0.5f * r.data<float>()[i];
    }
  }
  const int64_t b = absl::GetFlag(FLAGS_batch), t = m.seq_len();
  const Tensor tokens = testing::Tokens({b, t}, m.vocab_size(), absl::GetFlag(FLAGS_seed) + 1);
  const Tensor targets = testing::Tokens({b, t}, m.vocab_size(), absl::GetFlag(FLAGS_seed) + 2);
  LRKV_TRY_ASSIGN(const double loss, model->Forward(tokens, targets));
  LRKV_TRY(model->Backward(1.0));

  std::filesystem::create_directories(dir + "/params");
  std::filesystem::create_directories(dir + "/grads");
  LRKV_TRY_ASSIGN(const std::string config_json, ConfigJson(m));
  std::ofstream(dir + "/config.json") << config_json;
  for (const auto& p : model->params().all()) {
    LRKV_TRY(WriteNpy(dir + "/params/" + p->spec.name + ".npy", p->value));
    LRKV_TRY(WriteNpy(dir + "/grads/" + p->spec.name + ".npy", p->grad));
  }
  LRKV_TRY(WriteNpy(dir + "/tokens.npy", tokens));
  LRKV_TRY(WriteNpy(dir + "/targets.npy", targets));
  LRKV_TRY_ASSIGN(Tensor logits, model->logits().View({b, t, m.vocab_size()}));
  LRKV_TRY(WriteNpy(dir + "/logits.npy", logits));
  LRKV_TRY_ASSIGN(Tensor loss_t, Tensor::Empty({}, DType::kF64));
  loss_t.data<double>()[0] = loss;
  return WriteNpy(dir + "/loss.npy", loss_t);
}

}  // namespace
}  // namespace lrkv

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Status s = lrkv::Run();
  if (!s.ok()) {
    std::fprintf(stderr, "dump_case: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
