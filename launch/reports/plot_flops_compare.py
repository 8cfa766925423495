#!/usr/bin/python3
"""Plots the JSON that `lrkv flops-compare` writes: the metric against cumulative training FLOPs for
every run (log x), a dashed line at each baseline's final value, and the point where the candidate
first reaches it. With seed groups: one band per group (mean +- sd over its seeds), the mean target
of each baseline group and the candidate's mean crossing with the saving and its interval.

    plot_flops_compare.py PREFIX.json PREFIX.png

Exit status 3 when matplotlib cannot be imported (lrkv then warns and keeps its CSV/JSON).
"""
import json
import sys

try:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on training machines
    import matplotlib.pyplot as plt
except ImportError as e:
    print(f"plot_flops_compare: {e}", file=sys.stderr)
    sys.exit(3)


def plot_groups(ax, data):
    """Seed groups: a band per group where its runs share their evaluation points, else a line each."""
    import numpy as np

    by_group = {}
    for run in data["runs"]:
        by_group.setdefault((run["group"], run["role"]), []).append(run)
    colors = {}
    for (group, role), runs in by_group.items():
        xs = [tuple(r["flops"]) for r in runs]
        style = "-" if role == "candidate" else "--"
        if all(x == xs[0] for x in xs) and all(None not in r["value"] for r in runs):
            x = np.array(xs[0])
            v = np.array([r["value"] for r in runs], dtype=float)
            keep = x > 0
            mean, sd = v.mean(axis=0)[keep], (v.std(axis=0, ddof=1) if len(runs) > 1 else 0 * v[0])[keep]
            (line,) = ax.plot(x[keep], mean, style, lw=2, label=f"{group} ({role}, {len(runs)} seeds)")
            ax.fill_between(x[keep], mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
        else:
            line = None
            for r in runs:
                pts = [(a, b) for a, b in zip(r["flops"], r["value"]) if b is not None and a > 0]
                (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], style, lw=1.2,
                                  color=line.get_color() if line else None,
                                  label=f"{group} ({role})" if r is runs[0] else None)
        colors[group] = line.get_color()
    for g in data["groups"]:
        color = colors[g["baseline"]]
        ax.axhline(g["target"], color=color, lw=0.8, ls=":")
        if g["target_lo"] is not None:
            ax.axhspan(g["target_lo"], g["target_hi"], color=color, alpha=0.06, lw=0)
        crossings = [s["crossing_flops"] for s in g["seeds"] if s["reached"]]
        if g["reached"] == len(g["seeds"]):
            x = sum(crossings) / len(crossings)
            ax.plot([x], [g["target"]], "o", ms=9, mfc="none", mec="black", mew=1.5)
            lo, hi = g["saving_pct_low"], g["saving_pct_high"]
            rng = f" [{lo:.1f}, {hi:.1f}]" if lo is not None and hi is not None else ""
            ax.annotate(f'{g["saving_pct"]["mean"]:.1f}%{rng} FLOPs saved vs {g["baseline"]}: {g["verdict"]}',
                        (x, g["target"]), textcoords="offset points", xytext=(-12, 10), ha="right", fontsize=8,
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
        else:
            ax.annotate(f'{g["baseline"]} mean {g["target"]:.4g}: reached by {g["reached"]}/{len(g["seeds"])} seeds',
                        (g["baseline_flops"], g["target"]), textcoords="offset points", xytext=(-8, 6),
                        ha="right", fontsize=8)


def main(json_path, png_path):
    with open(json_path) as f:
        data = json.load(f)
    metric = data["metric"]
    fig, ax = plt.subplots(figsize=(8, 5))
    seeds = any(len(g["baseline_runs"]) > 1 or len(g["candidate_runs"]) > 1 for g in data.get("groups", []))
    if seeds:
        plot_groups(ax, data)
        finish(ax, fig, data, metric, png_path)
        return
    colors = {}
    for run in data["runs"]:
        # Log x: records before any FLOPs (none in practice) and non-finite values (null) are skipped.
        pts = [(x, y) for x, y in zip(run["flops"], run["value"]) if y is not None and x > 0]
        style = "-" if run["role"] == "candidate" else "--"
        width = 2.0 if run["role"] == "candidate" else 1.4
        (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], style, lw=width,
                          marker="." if len(pts) <= 60 else None,
                          label=f'{run["label"]} ({run["role"]})')
        colors[run["label"]] = line.get_color()
    for row in data["rows"]:
        color = colors[row["baseline"]]
        ax.axhline(row["target"], color=color, lw=0.8, ls=":")
        ax.plot([row["baseline_flops"]], [row["target"]], "s", color=color, ms=6)
        if row["reached"]:
            ax.plot([row["candidate_flops"]], [row["candidate_value"]], "o", ms=9, mfc="none",
                    mec="black", mew=1.5)
            ax.annotate(f'{row["flops_saved_pct"]:.1f}% FLOPs saved vs {row["baseline"]}'
                        if row["flops_saved_pct"] >= 0 else
                        f'{-row["flops_saved_pct"]:.1f}% more FLOPs than {row["baseline"]}',
                        (row["candidate_flops"], row["candidate_value"]), textcoords="offset points",
                        xytext=(-12, 10), ha="right", va="bottom", fontsize=8,
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
        else:
            ax.annotate(f'{row["baseline"]} {row["target"]:.4g} not reached', (row["baseline_flops"], row["target"]),
                        textcoords="offset points", xytext=(-8, 6), ha="right", fontsize=8)
    finish(ax, fig, data, metric, png_path)


def finish(ax, fig, data, metric, png_path):
    ax.set_xscale("log")
    ax.margins(y=0.08)  # room for the labels at the ends of the curves
    ax.set_xlabel("cumulative training FLOPs")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against compute: {data['candidate']} vs baseline(s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
