#!/usr/bin/python3
"""Summarises bench/variant_study.sh: reads every run of STUDY_DIR (metrics.jsonl, eval.json,
heads.json), each group's `lrkv flops` JSON, the flops-compare and flops-project outputs in
RESULTS/variant_study/, and writes

  RESULTS/variant_study.json              one record per run (variant, seed, scale, ...) and the
                                          per-variant statistics, savings, head diversity, projection
  RESULTS/variant_study.md                the tables README quotes
  RESULTS/variant_study_loss_vs_flops.png validation loss against cumulative FLOPs, a band per variant
  RESULTS/variant_study_loss_vs_kv.png    final loss against KV-cache bytes per token
  RESULTS/variant_study_heads.png         head diversity per layer and variant (mean over seeds)

    variant_study_report.py STUDY_DIR RESULTS_DIR

Intervals are 95% Student-t over seeds (Welch for differences), as in `lrkv flops-compare`.
"""
import glob
import json
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

ORDER = ["mha", "gqa", "mqa", "mla", "mlra", "lrkv"]
# The paper's Table 3 (effective rank as % of H, 128M, 6 heads): uncentred, PCA-based (centred).
PAPER_TABLE3_128M = {"mha": (95.4, 82.4), "lrkv": (96.2, 83.0), "gqa": (90.5, 79.6), "mqa": (72.6, 78.4),
                     "mla": (83.9, 78.5)}


def interval(xs):
    xs = np.asarray(xs, dtype=float)
    n = len(xs)
    mean = float(xs.mean())
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "lo": None, "hi": None}
    sd = float(xs.std(ddof=1))
    h = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "lo": mean - h, "hi": mean + h}


def welch(a, b):
    """mean(b) - mean(a) with Welch's 95% interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return {"mean": d, "lo": None, "hi": None}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return {"mean": d, "lo": d, "hi": d}
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    h = float(stats.t.ppf(0.975, dof)) * se
    return {"mean": d, "lo": d - h, "hi": d + h}


def fmt(i, digits=4, sign=False, bounds=False):
    """mean [lo, hi]; with `bounds` the brackets always, "?" for a bound that is not defined."""
    if i is None or i.get("mean") is None:
        return "-"
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    s = f.format(i["mean"])
    lo, hi = i.get("lo"), i.get("hi")
    if bounds or (lo is not None and hi is not None):
        s += f" [{'?' if lo is None else f.format(lo)}, {'?' if hi is None else f.format(hi)}]"
    return s


def read_runs(study):
    runs = []
    for d in sorted(glob.glob(os.path.join(study, "*-s*"))):
        m = re.fullmatch(r"(\w+)-(\w+)-s(\d+)", os.path.basename(d))
        if not m or not os.path.exists(os.path.join(d, "eval.json")):
            continue
        scale, variant, seed = m.group(1), m.group(2), int(m.group(3))
        metrics = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl")) if l.strip()]
        evals = [r for r in metrics if "val_loss" in r]
        cost = json.loads(open(os.path.join(study, f"{scale}-{variant}.flops.json")).readline())
        heads = json.load(open(os.path.join(d, "heads.json")))
        summary = json.load(open(os.path.join(d, "summary.json")))
        whole = json.load(open(os.path.join(d, "eval.json")))
        runs.append({
            "scale": scale, "variant": variant, "seed": seed, "dir": d,
            "params": summary["params"], "steps": summary["steps"], "tokens": summary["tokens"],
            "seconds": summary["seconds"], "flops_cumulative": summary["flops_cumulative"],
            "train_flops_per_token": cost["train_flops_per_token"],
            "kv_values_per_token_per_layer": cost["kv_cache_values_per_token_per_layer"],
            "kv_bf16_bytes_per_token": cost["kv_cache_bf16_bytes_per_token"],
            "final_val_loss": evals[-1]["val_loss"],  # the 8 fixed evaluation batches
            "final_val_loss_whole_split": whole["loss"], "whole_split_tokens": whole["tokens"],
            "curve": {"step": [r["step"] for r in evals], "flops": [r["flops_cumulative"] for r in evals],
                      "val_loss": [r["val_loss"] for r in evals]},
            "head_diversity": heads["mean_over_layers"],
            "head_diversity_layers": [{"uncentred_pct": l["uncentred"]["effective_rank_pct"],
                                       "centred_pct": l["centred"]["effective_rank_pct"],
                                       "uncentred_pcs_for_90": l["uncentred"]["pcs_for_90"],
                                       "centred_pcs_for_90": l["centred"]["pcs_for_90"],
                                       "mean_off_diagonal": l["mean_off_diagonal"]} for l in heads["layers"]],
            "heads": heads["heads"],
        })
    return runs


def grouped(runs):
    out = {}
    for r in runs:
        out.setdefault((r["scale"], r["variant"]), []).append(r)
    return out


def main(study, results):
    runs = read_runs(study)
    if not runs:
        sys.exit(f"variant_study_report: no finished runs in {study}")
    groups = grouped(runs)
    scales = [s for s in ("demo", "wide") if any(k[0] == s for k in groups)]
    variants = lambda scale: [v for v in ORDER if (scale, v) in groups]  # noqa: E731

    summary, md = [], []
    md.append("Final validation loss on the whole validation split (mean [95% interval] over seeds) and its "
              "difference to MHA (Welch 95%):\n")
    md.append("| scale | variant | seeds | KV bytes/token (bf16) | train GFLOPs/token | final loss | vs MHA |")
    md.append("|---|---|---:|---:|---:|---|---|")
    for scale in scales:
        mha = [r["final_val_loss_whole_split"] for r in groups.get((scale, "mha"), [])]
        for v in variants(scale):
            rs = groups[(scale, v)]
            losses = [r["final_val_loss_whole_split"] for r in rs]
            rec = {"scale": scale, "variant": v, "seeds": [r["seed"] for r in rs],
                   "final_val_loss_whole_split": interval(losses),
                   "final_val_loss": interval([r["final_val_loss"] for r in rs]),
                   "difference_to_mha": welch(mha, losses) if mha and v != "mha" else None,
                   "kv_bf16_bytes_per_token": rs[0]["kv_bf16_bytes_per_token"],
                   "train_flops_per_token": rs[0]["train_flops_per_token"], "params": rs[0]["params"]}
            summary.append(rec)
            md.append(f"| {scale} | {v.upper()} | {len(rs)} | {rec['kv_bf16_bytes_per_token']} | "
                      f"{rec['train_flops_per_token'] / 1e9:.4f} | {fmt(rec['final_val_loss_whole_split'])} | "
                      f"{fmt(rec['difference_to_mha'], 4, True) if rec['difference_to_mha'] else '-'} |")

    # Compute to reach each baseline's mean final loss (8-batch evaluations), from flops-compare.
    savings = []
    md.append("\nTraining FLOPs each variant needs to reach a baseline's final validation loss (mean of the "
              "baseline's seeds), as % saved against the baseline's budget: mean over the candidate's seeds "
              "[95% interval widened by the target's own interval; ? where a seed never reaches that end of the target's "
              "interval]; per-seed values; flops-compare's verdict:\n")
    md.append("| scale | candidate | baseline | reached | FLOPs saved % | per seed | steps ratio | verdict |")
    md.append("|---|---|---|---:|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(results, "variant_study", "compare-*.json"))):
        j = json.load(open(path))
        scale, cand = os.path.basename(path)[len("compare-"):-len(".json")].split("-", 1)
        for g in j["groups"]:
            base = g["baseline"].split("-")[1]
            per_seed = [s["saving_pct"] for s in g["seeds"]]
            rec = {"scale": scale, "candidate": cand, "baseline": base, "reached": g["reached"],
                   "seeds": len(g["seeds"]), "saving_pct": g["saving_pct"], "saving_pct_low": g["saving_pct_low"],
                   "saving_pct_high": g["saving_pct_high"], "per_seed_saving_pct": per_seed,
                   "steps_ratio": g["steps_ratio"], "steps_ratio_low": g["steps_ratio_low"],
                   "steps_ratio_high": g["steps_ratio_high"], "verdict": g["verdict"], "target": g["target"]}
            savings.append(rec)
            full = g["reached"] == len(g["seeds"])
            saving = fmt({"mean": g["saving_pct"]["mean"], "lo": g["saving_pct_low"], "hi": g["saving_pct_high"]}, 1,
                         bounds=True) if full else "-"
            ratio = fmt({"mean": g["steps_ratio"]["mean"], "lo": g["steps_ratio_low"], "hi": g["steps_ratio_high"]}, 3,
                        bounds=True) if full else "-"
            seeds = ", ".join("never" if s is None else f"{s:.1f}" for s in per_seed)
            md.append(f"| {scale} | {cand.upper()} | {base.upper()} | {g['reached']}/{len(g['seeds'])} | {saving} | "
                      f"{seeds} | {ratio} | {g['verdict']} |")

    # Head diversity: mean over layers, mean over seeds; the paper's Table 3 beside it.
    heads = []
    md.append("\nHead diversity (`lrkv analyze heads`, mean over layers and seeds): effective rank of the heads' "
              "W_Q W_K^T as % of H, uncentred and centred (the centred maximum is (H-1)/H); components for 90% of "
              "the variance; mean off-diagonal cosine. Paper: Table 3, 128M (6 heads).\n")
    md.append("| scale | variant | H | uncentred % | centred % | PCs 90% (unc.) | mean off-diag | paper unc. % | "
              "paper centred % |")
    md.append("|---|---|---:|---|---|---:|---:|---:|---:|")
    for scale in scales:
        for v in variants(scale):
            rs = groups[(scale, v)]
            un = interval([r["head_diversity"]["uncentred_effective_rank_pct"] for r in rs])
            ce = interval([r["head_diversity"]["centred_effective_rank_pct"] for r in rs])
            pcs = float(np.mean([r["head_diversity"]["uncentred_pcs_for_90"] for r in rs]))
            off = float(np.mean([r["head_diversity"]["mean_off_diagonal"] for r in rs]))
            paper = PAPER_TABLE3_128M.get(v)
            heads.append({"scale": scale, "variant": v, "heads": rs[0]["heads"], "uncentred_pct": un,
                          "centred_pct": ce, "uncentred_pcs_for_90": pcs, "mean_off_diagonal": off,
                          "paper_128m": paper})
            md.append(f"| {scale} | {v.upper()} | {rs[0]['heads']} | {fmt(un, 1)} | {fmt(ce, 1)} | {pcs:.2f} | "
                      f"{off:.3f} | {paper[0] if paper else '-'} | {paper[1] if paper else '-'} |")

    # The projection to 6.3B.
    projections = []
    for path in sorted(glob.glob(os.path.join(results, "variant_study", "project-*.json"))):
        p = json.load(open(path))
        p["from"] = os.path.basename(path)
        projections.append(p)
    if projections:
        md.append("\nExtrapolation (`lrkv flops-project`, 6.3B LRKV vs MHA, 126B tokens, 64 H100 at 45% MFU) from "
                  "each scale's measured steps ratio to MHA's loss; a range, not a measurement:\n")
        md.append("| from | steps ratio [95%] | saving % [95%] | GPU-hours saved [95%] |")
        md.append("|---|---|---|---|")
        for p in projections:
            if "error" in p:
                md.append(f"| {p['from']} | not projected: {p['error']} | | |")
                continue
            bound = lambda v: "unbounded" if v is None else f"{v:.3g}"  # noqa: E731
            rng = lambda a, b: f" [{bound(a)}, {bound(b)}]"  # noqa: E731
            md.append(f"| {p['from']} | {p['steps_ratio']:.3f}{rng(p.get('steps_ratio_low'), p.get('steps_ratio_high'))} | "
                      f"{p['saving_pct']:.1f}{rng(p.get('saving_pct_low'), p.get('saving_pct_high'))} | "
                      f"{p['gpu_hours_saved']:.0f}{rng(p.get('gpu_hours_saved_low'), p.get('gpu_hours_saved_high'))} |")

    out = {"runs": runs, "variants": summary, "compute_to_target": savings, "head_diversity": heads,
           "projection_6_3b": projections}
    with open(os.path.join(results, "variant_study.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(results, "variant_study.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # Loss against cumulative FLOPs: one band per variant (mean +- sd over seeds).
    fig, axes = plt.subplots(1, len(scales), figsize=(7 * len(scales), 5), squeeze=False)
    for ax, scale in zip(axes[0], scales):
        for v in variants(scale):
            rs = groups[(scale, v)]
            x = np.mean([r["curve"]["flops"] for r in rs], axis=0)
            y = np.array([r["curve"]["val_loss"] for r in rs])
            mean, sd = y.mean(axis=0), y.std(axis=0, ddof=1) if len(rs) > 1 else np.zeros(y.shape[1])
            (line,) = ax.plot(x, mean, lw=1.6, label=f"{v.upper()} ({len(rs)} seeds)")
            ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("cumulative training FLOPs")
        ax.set_ylabel("validation loss (8 fixed batches)")
        ax.set_title(f"{scale}: {rs[0]['params'] / 1e6:.1f}M parameters, {rs[0]['tokens'] / 1e6:.2f}M tokens")
        lo = min(min(r["curve"]["val_loss"]) for v in variants(scale) for r in groups[(scale, v)])
        ax.set_ylim(lo - 0.05, lo + 1.2)  # the informative end of training
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(results, "variant_study_loss_vs_flops.png"), dpi=110)

    # The trade-off: final whole-split loss against KV-cache bytes per token.
    fig, axes = plt.subplots(1, len(scales), figsize=(6 * len(scales), 4.5), squeeze=False)
    for ax, scale in zip(axes[0], scales):
        for rec in (s for s in summary if s["scale"] == scale):
            i = rec["final_val_loss_whole_split"]
            err = [[i["mean"] - i["lo"]], [i["hi"] - i["mean"]]] if i["lo"] is not None else None
            ax.errorbar([rec["kv_bf16_bytes_per_token"]], [i["mean"]], yerr=err, fmt="o", capsize=4,
                        label=rec["variant"].upper())
            ax.annotate(rec["variant"].upper(), (rec["kv_bf16_bytes_per_token"], i["mean"]),
                        textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("KV cache, bf16 bytes per token (all layers)")
        ax.set_ylabel("final validation loss (whole split), 95% interval")
        ax.set_title(scale)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(results, "variant_study_loss_vs_kv.png"), dpi=110)
    # Head diversity per layer: uncentred and centred effective rank (% of H), mean over seeds.
    fig, axes = plt.subplots(2, len(scales), figsize=(6 * len(scales), 7), squeeze=False)
    for col, scale in enumerate(scales):
        for v in variants(scale):
            rs = groups[(scale, v)]
            for row, key in enumerate(("uncentred_pct", "centred_pct")):
                y = np.mean([[l[key] for l in r["head_diversity_layers"]] for r in rs], axis=0)
                axes[row][col].plot(range(len(y)), y, marker="o", label=v.upper())
        for row, key in enumerate(("uncentred", "centred (kernel PCA)")):
            ax = axes[row][col]
            ax.set_title(f"{scale}: {key} effective rank")
            ax.set_xlabel("layer")
            ax.set_ylabel("% of H")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(results, "variant_study_heads.png"), dpi=110)
    print("\n".join(md))
    print(f"variant_study_report: {len(runs)} runs -> {results}/variant_study.{{json,md}}, variant_study_*.png",
          file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
