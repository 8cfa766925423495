#!/usr/bin/env python3
"""bench/results/decode_cpu.json -> decode_cpu.png: time per generated token against context, one
line per variant (batch 1, solid; batch 16, dashed), and the memory bound (dotted) beside each,
at the read bandwidth measured with that case.
Usage: plot_decode.py RESULTS.json OUT.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(src, out):
    data = json.load(open(src))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {}
    for batch, style in ((1, "-"), (16, "--")):
        for variant in dict.fromkeys(c["variant"] for c in data["cases"]):
            cases = sorted((c for c in data["cases"] if c["variant"] == variant and c["batch"] == batch),
                           key=lambda c: c["context"])
            if not cases:
                continue
            x = [c["context"] for c in cases]
            (line,) = ax.plot(x, [1e3 * c["token_s"] for c in cases], style, marker="o", ms=3,
                              color=colors.get(variant), label=f"{variant} batch {batch}")
            colors[variant] = line.get_color()
            ax.plot(x, [1e3 * c["memory_bound_s"] / batch for c in cases], ":", color=line.get_color(), lw=0.8)
            if batch == 1:
                bx.plot(x, [c["bound_over_time"] for c in cases], "-", marker="o", ms=3, color=line.get_color(),
                        label=variant)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("cached positions per sequence")
    ax.set_ylabel("ms per generated token")
    cpu = f"{data['cpu']}, {data['simd_bytes']}-byte vectors" if "cpu" in data else "CPU not recorded"
    ax.set_title(f"decode, {data['layers']} layers of each 1.2B config (dotted: memory bound)\n{cpu}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    bx.set_xscale("log", base=2)
    bx.set_xlabel("cached positions per sequence")
    bx.set_ylabel("memory bound / measured time (batch 1)")
    bw = data["read_bandwidth_bytes_per_s"]
    bx.set_title(f"each case against its own bandwidth reading (median {bw['median'] / 1e9:.1f} GB/s, "
                 f"{bw['min'] / 1e9:.0f}-{bw['max'] / 1e9:.0f}), {data['threads']} threads", fontsize=9)
    bx.grid(True, alpha=0.3)
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
