#!/usr/bin/python3
"""Plots the JSON that `lrkv flops-compare` writes: the metric against cumulative training FLOPs for
every run (log x), a dashed line at each baseline's final value, and the point where the candidate
first reaches it.

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


def main(json_path, png_path):
    with open(json_path) as f:
        data = json.load(f)
    metric = data["metric"]
    fig, ax = plt.subplots(figsize=(8, 5))
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
