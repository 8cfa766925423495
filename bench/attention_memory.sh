#!/usr/bin/env bash
# Peak resident memory of `lrkv train` (one process) for a few steps of the demo LRKV model at
# T = 256, 1024 and 2048, with the attention op saving only each row's log-sum-exp. Beside it, the
# (B, H, T, T) fp32 probability buffers per step that the op kept before (B H T^2 x 4 bytes x
# layers), which no longer exist. Writes $OUT (default bench/results/attention_memory_run.json);
# bench/results/attention_memory.json holds the before/after comparison quoted in README.md.
#   bench/attention_memory.sh [BUILD_BIN_DIR] [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build/bin}" data="${2:-data_out/brown}"
[ -x "$bin/lrkv" ] || { echo "attention_memory: no $bin/lrkv (build first)"; exit 2; }
"$bin/lrkv" prepare-data --corpus=brown --out="$data" >/dev/null
out="${OUT:-bench/results/attention_memory_run.json}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
batch=4 heads=4 layers=4
rows=()
for t in 256 1024 2048; do
  /usr/bin/time -f "%M" -o "$work/rss" "$bin/lrkv" train --config=configs/brown-tiny-lrkv.textproto \
    --data_dir="$data" --model.seq_len=$t --train.global_batch=$batch --steps=3 --train.eval_batches=1 \
    --train.peak_flops=1e9 --out_dir="$work/run$t" >"$work/log$t" 2>&1
  rss_kib="$(tail -1 "$work/rss")"
  step_s="$(/usr/bin/python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(r[-1]['step_time_s'])" "$work/run$t/metrics.jsonl")"
  probs_bytes=$((batch * heads * t * t * 4 * layers))
  echo "T=$t: peak RSS $((rss_kib / 1024)) MiB, step ${step_s} s; (B,H,T,T) buffers no longer kept: $((probs_bytes / 1048576)) MiB"
  rows+=("{\"seq_len\": $t, \"batch\": $batch, \"peak_rss_mib\": $((rss_kib / 1024)), \"step_time_s\": $step_s, \"removed_probs_mib\": $((probs_bytes / 1048576))}")
done
mkdir -p bench/results
{ echo "["; (IFS=,; echo "${rows[*]}" | sed 's/},{/},\n{/g'); echo "]"; } >"$out"
echo "attention_memory -> $out"
