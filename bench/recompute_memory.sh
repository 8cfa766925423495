#!/usr/bin/env bash
# Peak resident memory and step time of `lrkv train` (one process, 3 steps) for each recomputation
# mode (train.recompute NONE, ATTENTION, BLOCK) on the demo LRKV model at T = 1024 and 2048 with 8
# layers, batch 4. Writes bench/results/recompute_memory.json (quoted in README.md).
#   bench/recompute_memory.sh [BUILD_BIN_DIR] [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build/bin}" data="${2:-data_out/brown}"
[ -x "$bin/lrkv" ] || { echo "recompute_memory: no $bin/lrkv (build first)"; exit 2; }
"$bin/lrkv" prepare-data --corpus=brown --out="$data" >/dev/null
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
rows=()
for t in 1024 2048; do
  for mode in NONE ATTENTION BLOCK; do
    /usr/bin/time -f "%M" -o "$work/rss" "$bin/lrkv" train --config=configs/brown-tiny-lrkv.textproto \
      --data_dir="$data" --model.seq_len=$t --model.n_layers=8 --train.global_batch=4 --steps=3 \
      --train.eval_batches=1 --train.peak_flops=1e9 --train.recompute=$mode --out_dir="$work/run$t$mode" \
      >"$work/log" 2>&1
    rss_mib=$(( $(tail -1 "$work/rss") / 1024 ))
    read -r step_s hfu_ratio < <(/usr/bin/python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][-1]; print(r['step_time_s'], r['hardware_flops_step'] / r['flops_step'])" "$work/run$t$mode/metrics.jsonl")
    echo "T=$t $mode: peak RSS $rss_mib MiB, step $step_s s, hardware/model FLOPs $hfu_ratio" >&2
    rows+=("{\"seq_len\": $t, \"recompute\": \"$mode\", \"peak_rss_mib\": $rss_mib, \"step_time_s\": $step_s, \"hardware_over_model_flops\": $hfu_ratio}")
  done
done
mkdir -p bench/results
{ echo "["; (IFS=,; echo "${rows[*]}" | sed 's/},{/},\n{/g'); echo "]"; } >bench/results/recompute_memory.json
echo "recompute_memory -> bench/results/recompute_memory.json" >&2
