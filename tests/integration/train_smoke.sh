#!/usr/bin/env bash
# End to end on the real corpus: prepare-data (cached in the build tree), then a short training run
# of a small model; checks the progress lines, metrics.jsonl and summary.json, and that the loss falls.
#   train_smoke.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR ATTENTION_CONFIG
set -euo pipefail
bin="$1"; src="$2"; work="$3"; config="$4"
data="$work/brown"
"$bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null
out="$work/run-$(basename "$config" .textproto)"
rm -rf "$out"
"$bin/lrkv" train --config="$src/configs/$config" --data_dir="$data" --out_dir="$out" --steps=30 \
  --model.vocab_size=2048 --model.n_layers=2 --model.seq_len=64 --train.warmup_steps=5 \
  --train.eval_every=15 --train.eval_batches=2 --train.log_every=5 | tee "$out.log"
grep -q "ETA" "$out.log"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/metrics.jsonl")]
assert len(rows) == 30, len(rows)
for key in ("step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "flops_step", "flops_cumulative",
            "flops_per_s", "mfu"):
    assert all(key in r for r in rows), key
evals = [r for r in rows if "val_loss" in r]
assert [r["step"] for r in evals] == [15, 30], evals
first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-5:]) / 5
assert last < first - 0.5, (first, last)
# The peak is measured at start while other tests may load the cores, so MFU can pass 1 when they stop.
assert all(0 < r["mfu"] < 4 for r in rows), [r["mfu"] for r in rows]
assert rows[-1]["flops_cumulative"] == sum(r["flops_step"] for r in rows)
summary = json.load(open(f"{out}/summary.json"))
assert summary["steps"] == 30 and summary["final_val_loss"] == evals[-1]["val_loss"]
# The machine its seconds were measured on: the CPU as /proc/cpuinfo names it, the build's features.
model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
assert summary["cpu"].startswith(model), summary["cpu"]
assert summary["cpu_build_features"] and summary["cpu_gemm"], summary
print(f"train_smoke: loss {first:.3f} -> {last:.3f}, val {evals[-1]['val_loss']:.3f}")
PY
