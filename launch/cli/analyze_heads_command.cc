// lrkv analyze heads --checkpoint=DIR|--safetensors=FILE [--format=table|json]
// The head-diversity diagnostic (model/head_diversity.h) of a trained model, per layer and averaged
// over layers: the effective rank of the heads' bilinear forms, uncentred and centred, as % of the
// heads; the components for 90% of the variance; the mean off-diagonal similarity. The checkpoint may
// come from any layout: it is loaded whole into one process through the resharding.
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "launch/cli/command_args.h"
#include "launch/cli/commands.h"
#include "launch/cli/inference_model.h"
#include "model/block.h"
#include "model/head_diversity.h"
#include "runtime/status.h"

namespace lrkv {
namespace {

constexpr char kUsage[] = "lrkv analyze heads --checkpoint=DIR|--safetensors=FILE [--format=table|json]";

nlohmann::ordered_json SpectrumJson(const Spectrum& s, int64_t heads) {
  nlohmann::ordered_json j;
  j["effective_rank"] = s.effective_rank;
  j["effective_rank_pct"] = 100.0 * s.effective_rank / double(heads);
  j["pcs_for_90"] = s.pcs_for_90;
  j["fractions"] = s.fractions;
  return j;
}

}  // namespace

absl::Status RunAnalyzeHeadsCommand(const std::vector<std::string>& args, MpiCommunicator& world) {
  LRKV_TRY_ASSIGN(const NamedArgs named, ParseNamedArgs(args, {"checkpoint", "safetensors", "format"}, kUsage));
  InferenceSource source;
  std::string format = "table";
  for (const auto& [name, value] : named) {
    if (name == "checkpoint") source.checkpoint = value;
    if (name == "safetensors") source.safetensors = value;
    if (name == "format") format = value;
  }
  LRKV_REQUIRE(format == "table" || format == "json", "--format must be table or json, got '", format, "'");
  LRKV_TRY_ASSIGN(InferenceModel m, LoadInferenceModel(world, source, /*tp=*/1, /*decoding=*/false));
  if (world.rank() != 0) return absl::OkStatus();  // every rank holds the whole model; one reports
  std::vector<HeadDiversity> layers;
  for (const auto& block : m.model->blocks()) {
    LRKV_TRY_ASSIGN(const HeadMaps maps, block->attention().variant().QueryKeyMaps());
    LRKV_TRY_ASSIGN(HeadDiversity d, HeadDiversityOf(maps));
    layers.push_back(std::move(d));
  }
  const int64_t heads = layers.front().heads;
  double un = 0, ce = 0, off = 0, un90 = 0, ce90 = 0;
  for (const HeadDiversity& d : layers) {
    un += d.uncentred.effective_rank, ce += d.centred.effective_rank, off += d.mean_off_diagonal;
    un90 += d.uncentred.pcs_for_90, ce90 += d.centred.pcs_for_90;
  }
  const double n = double(layers.size());
  const std::string variant = AttentionKind_Name(m.config.model().attention());
  if (format == "json") {
    nlohmann::ordered_json j;
    j["source"] = m.source, j["step"] = m.step, j["variant"] = variant, j["heads"] = heads;
    j["output_heads"] = m.config.model().n_heads();
    j["layers"] = nlohmann::ordered_json::array();
    for (size_t l = 0; l < layers.size(); ++l) {
      const HeadDiversity& d = layers[l];
      nlohmann::ordered_json e;
      e["layer"] = l;
      e["uncentred"] = SpectrumJson(d.uncentred, heads);
      e["centred"] = SpectrumJson(d.centred, heads);
      e["mean_off_diagonal"] = d.mean_off_diagonal;
      std::vector<std::vector<double>> gram(d.heads);
      for (int64_t i = 0; i < d.heads; ++i) {
        for (int64_t k = 0; k < d.heads; ++k) gram[i].push_back(d.gram(i, k));
      }
      e["gram"] = gram;
      j["layers"].push_back(e);
    }
    nlohmann::ordered_json mean;
    mean["uncentred_effective_rank_pct"] = 100.0 * un / n / double(heads);
    mean["centred_effective_rank_pct"] = 100.0 * ce / n / double(heads);
    mean["uncentred_pcs_for_90"] = un90 / n, mean["centred_pcs_for_90"] = ce90 / n;
    mean["mean_off_diagonal"] = off / n;
    j["mean_over_layers"] = mean;
    std::printf("%s\n", j.dump().c_str());
    return absl::OkStatus();
  }
  std::printf("head diversity of %s (step %lld): %s, %lld heads per layer%s\n", m.source.c_str(),
              static_cast<long long>(m.step), variant.c_str(), static_cast<long long>(heads),
              heads != m.config.model().n_heads() ? " (core heads: output heads x branches)" : "");
  std::printf("effective rank of the heads' W_Q W_K^T as %% of H; PCs for 90%% of the variance\n\n");
  std::printf("%-6s %12s %8s %12s %8s %14s\n", "layer", "uncentred %", "PCs 90", "centred %", "PCs 90",
              "mean offdiag");
  for (size_t l = 0; l < layers.size(); ++l) {
    const HeadDiversity& d = layers[l];
    std::printf("%-6zu %12.1f %8d %12.1f %8d %14.3f\n", l, 100.0 * d.uncentred.effective_rank / double(heads),
                d.uncentred.pcs_for_90, 100.0 * d.centred.effective_rank / double(heads), d.centred.pcs_for_90,
                d.mean_off_diagonal);
  }
  std::printf("%-6s %12.1f %8.1f %12.1f %8.1f %14.3f\n", "mean", 100.0 * un / n / double(heads), un90 / n,
              100.0 * ce / n / double(heads), ce90 / n, off / n);
  return absl::OkStatus();
}

}  // namespace lrkv
