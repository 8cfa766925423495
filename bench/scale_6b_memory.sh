#!/usr/bin/env bash
# The memory model at the 6.3B LRKV config's full width (d 4096, 32 heads of 128, d_ff 16384,
# T 2048, untied; the Brown tokenizer's vocabulary of 8192; LAYERS of its 32 layers, 2 by default,
# which keeps a step under two minutes here): 2 training steps on 4 TP ranks, one micro-batch of one
# sequence, in each recompute mode, in FP32 and in BF16 mixed precision. Each run's measured peak
# per rank (resident, and its allocator's) beside `lrkv memory`'s prediction and its step time.
# Writes bench/results/scale_6b_memory.json and .md (quoted in README.md), each run's prediction
# and metrics in bench/results/scale_6b_memory/.
#   bench/scale_6b_memory.sh [BUILD_BIN_DIR] [DATA_DIR]     (env LAYERS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build/bin}" data="${2:-data_out/brown}" layers="${LAYERS:-2}"
[ -x "$bin/lrkv" ] || { echo "scale_6b_memory: no $bin/lrkv (build first)"; exit 2; }
"$bin/lrkv" prepare-data --corpus=brown --out="$data" >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
shape=(--config=configs/paper/6.3b-lrkv.textproto --model.vocab_size=8192 --model.n_layers="$layers"
       --train.global_batch=1 --train.micro_batch=1 --train.lr=3e-4)  # the paper configs set no train section
main() {
  local mode precision run
  rm -rf bench/results/scale_6b_memory; mkdir -p bench/results/scale_6b_memory
  for precision in FP32 BF16; do
    for mode in NONE ATTENTION BLOCK; do
      run="$precision-$mode"
      "$bin/lrkv" memory "${shape[@]}" --train.recompute=$mode --train.precision=$precision --layout=tp4 \
        --format=json >"$work/$run.memory.json"
      echo "6.3B width, $layers layers, tp4, $run: predicted $(/usr/bin/python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['peak_bytes'] / 2**30, 2))" "$work/$run.memory.json") GiB per rank" >&2
      mpirun --oversubscribe --bind-to none -np 4 "$bin/lrkv" train "${shape[@]}" --tp=4 --data_dir="$data" \
        --steps=2 --train.eval_batches=1 --train.eval_every=1000 --train.peak_flops=1e9 --train.log_every=1 \
        --train.recompute=$mode --train.precision=$precision --out_dir="$work/$run" >"$work/$run.log" 2>&1 ||
        { grep -m3 "error" "$work/$run.log"; exit 1; }
      tail -1 "$work/$run.log" >&2
      cp "$work/$run.memory.json" bench/results/scale_6b_memory/$run.memory.json
      cp "$work/$run/metrics.jsonl" bench/results/scale_6b_memory/$run.metrics.jsonl
    done
  done
  /usr/bin/python3 - "$work" "$layers" <<'PY'
import json, sys
work, layers = sys.argv[1], int(sys.argv[2])
gib = 2 ** 30
rows = []
for precision, mode in [(p, m) for p in ("FP32", "BF16") for m in ("NONE", "ATTENTION", "BLOCK")]:
    p = json.load(open(f"bench/results/scale_6b_memory/{precision}-{mode}.memory.json"))
    m = [json.loads(l) for l in open(f"bench/results/scale_6b_memory/{precision}-{mode}.metrics.jsonl")]
    rows.append({"precision": precision, "recompute": mode, "layers": layers, "tp": 4, "seq_len": 2048, "micro_batch": 1,
                 "predicted_peak_bytes": p["peak_bytes"], "measured_rss_peak_bytes": m[-1]["rss_peak_bytes"],
                 "predicted_reserved_bytes": max(r["reserved_peak_bytes"] for r in p["ranks"]),
                 "measured_reserved_peak_bytes": m[-1]["memory_peak_reserved_bytes"],
                 "predicted_allocated_bytes": max(r["allocated_peak_bytes"] for r in p["ranks"]),
                 "measured_allocated_peak_bytes": m[-1]["memory_peak_allocated_bytes"],
                 "step_time_s": m[-1]["step_time_s"], "ranks": p["ranks"]})
json.dump(rows, open("bench/results/scale_6b_memory.json", "w"), indent=1)
with open("bench/results/scale_6b_memory.md", "w") as f:
    f.write("| precision | recompute | resident per rank: predicted / measured (GiB) | error | allocated: predicted / measured | reserved: predicted / measured | step (s) |\n")
    f.write("|---|---|---:|---:|---:|---:|---:|\n")
    for r in rows:
        e = r["measured_rss_peak_bytes"] / r["predicted_peak_bytes"] - 1
        f.write(f"| {r['precision']} | {r['recompute']} | {r['predicted_peak_bytes'] / gib:.2f} / {r['measured_rss_peak_bytes'] / gib:.2f} | "
                f"{e:+.1%} | {r['predicted_allocated_bytes'] / gib:.2f} / {r['measured_allocated_peak_bytes'] / gib:.2f} | "
                f"{r['predicted_reserved_bytes'] / gib:.2f} / {r['measured_reserved_peak_bytes'] / gib:.2f} | "
                f"{r['step_time_s']:.1f} |\n")
print(open("bench/results/scale_6b_memory.md").read())
PY
  echo "scale_6b_memory -> bench/results/scale_6b_memory.{json,md}" >&2
}
main "$@"
