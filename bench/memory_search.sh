#!/usr/bin/env bash
# Which layouts of 8, 16 and 32 80 GB GPUs (H100) hold the paper's 6.3B LRKV and MHA at T = 2048
# (micro-batch 1, global batch 256, ZeRO-1), as `lrkv memory --search` predicts, in each recompute
# mode, in FP32 (16 bytes of state per parameter before ZeRO-1) and in BF16 mixed precision (18 before ZeRO-1,
# which shards the fp32 masters: the bf16 weights beside them; activations at 2 bytes).
# Writes bench/results/memory_search_6.3b.json (every layout) and .md (quoted in README.md).
#   bench/memory_search.sh [BUILD_BIN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build/bin}"
[ -x "$bin/lrkv" ] || { echo "memory_search: no $bin/lrkv (build first)"; exit 2; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
main() {
  local v g p
  for p in FP32 BF16; do
    for v in lrkv mha; do
      for g in 8 16 32; do
        "$bin/lrkv" memory --config="configs/paper/6.3b-$v.textproto" --train.global_batch=256 --train.micro_batch=1 \
          --train.precision=$p --zero1=true --peak=h100 --search="$g" --format=json |
          sed "s/^{/{\"variant\": \"$v\", \"precision\": \"$p\", /" >>"$work/all.jsonl"
      done
    done
  done
  /usr/bin/python3 - "$work/all.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump(rows, open("bench/results/memory_search_6.3b.json", "w"), indent=1)
gib = 2 ** 30
cap = 80e9 / gib
with open("bench/results/memory_search_6.3b.md", "w") as f:
  for precision in ("FP32", "BF16"):
    f.write(f"Peak GiB per rank ({precision}, ZeRO-1, micro-batch 1, T 2048; an H100 has {cap:.1f} GiB; * fits)\n\n")
    f.write("| GPUs | layout | LRKV NONE | LRKV BLOCK | MHA NONE | MHA BLOCK | train TFLOP/step/rank (LRKV, MHA) |\n")
    f.write("|---:|---|---:|---:|---:|---:|---:|\n")
    by = {(r["variant"], r["precision"], r["gpus"], r["layout"]): r for r in rows}
    for r in rows:
        if r["variant"] != "lrkv" or r["precision"] != precision:
            continue
        m = by[("mha", precision, r["gpus"], r["layout"])]
        cell = lambda x, k: f"{x[k] / gib:.1f}{'*' if x[k] <= 80e9 else ''}"
        f.write(f"| {r['gpus']} | {r['layout']} | {cell(r, 'peak_bytes_NONE')} | {cell(r, 'peak_bytes_BLOCK')} | "
                f"{cell(m, 'peak_bytes_NONE')} | {cell(m, 'peak_bytes_BLOCK')} | "
                f"{r['train_flops_per_step_per_rank'] / 1e12:.0f}, {m['train_flops_per_step_per_rank'] / 1e12:.0f} |\n")
    f.write("\n")
print(open("bench/results/memory_search_6.3b.md").read())
PY
  echo "memory_search -> bench/results/memory_search_6.3b.{json,md}" >&2
}
main "$@"
