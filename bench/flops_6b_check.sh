#!/usr/bin/env bash
# The 6B-scale FLOP check: real training steps of the paper's 6.3B configs' layers at full width
# (d_model 4096, 32 heads of 128, d_ff 16384), a few layers and a short sequence, on TP ranks so
# each rank holds 1/tp of the layer. The FLOPs the ops count, summed over the ranks, must equal
#  - `lrkv flops --layout` for the run's own shape (every layer, the LM head and the work TP
#    repeats on each rank), exactly; and
#  - per layer, after taking out the LM head and TP's repeated work, the full 6.3B config's
#    analytic per-layer training FLOPs at the same sequence length, exactly.
# The vocabulary is the Brown tokenizer's (8192), not the paper's 50304: only the LM head changes.
#   bench/flops_6b_check.sh [VARIANTS (default "mha gqa mqa mla lrkv")]
# Environment: TP (default 4), LAYERS (2), SEQ (64), BATCH (4). Writes bench/results/flops_6b_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
variants="${1:-mha gqa mqa mla lrkv}"
TP="${TP:-4}"; LAYERS="${LAYERS:-2}"; SEQ="${SEQ:-64}"; BATCH="${BATCH:-4}"
[ -x build/bin/lrkv ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null; cmake --build build -j2 --target lrkv lrkv-prepare-data; }
[ -f data_out/brown/train.bin ] || build/bin/lrkv prepare-data --corpus=brown --out=data_out/brown
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=runs/flops_6b_check
mkdir -p "$work" bench/results
shape=(--model.n_layers="$LAYERS" --model.seq_len="$SEQ" --model.vocab_size=8192 --train.global_batch="$BATCH")
for v in $variants; do
  cfg=configs/paper/6.3b-$v.textproto
  echo "== $v: $LAYERS layers of $cfg at tp$TP, T $SEQ, $BATCH sequences per step"
  mpirun -np "$TP" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 build/bin/lrkv train --config="$cfg" \
    "${shape[@]}" --tp="$TP" --steps=2 --data_dir=data_out/brown --train.eval_batches=1 \
    --out_dir="$work/$v" --train.peak_flops=1e11 --train.lr=3e-5 --train.grad_clip=1 | grep -E "^(step|done)"
  build/bin/lrkv flops --config="$cfg" "${shape[@]}" --layout=tp"$TP" --format=json >"$work/$v.layout.json"
  build/bin/lrkv flops --config="$cfg" --model.seq_len="$SEQ" --format=json >"$work/$v.full.json"
done
/usr/bin/python3 - "$work" "$TP" "$LAYERS" "$SEQ" "$BATCH" $variants <<'PY'
import json, re, sys
work, tp, layers, seq, batch = sys.argv[1], *map(int, sys.argv[2:6])
variants, rows, ok = sys.argv[6:], [], True
tokens = batch * seq
for v in variants:
    metrics = [json.loads(l) for l in open(f"{work}/{v}/metrics.jsonl")]
    run = json.loads(open(f"{work}/{v}.layout.json").readline())
    full = json.loads(open(f"{work}/{v}.full.json").readline())
    measured = metrics[-1]["flops_step"]
    repeated = 3 * run["tp_replicated_extra_forward_flops_per_token"] * tokens
    lm_head = 3 * run["lm_head_forward_flops_per_token"] * tokens
    per_layer = (measured - lm_head - repeated) / layers
    full_layers = int(re.search(r"n_layers: (\d+)", open(f"configs/paper/6.3b-{v}.textproto").read()).group(1))
    per_layer_6b = 3 * (full["forward_flops_per_token"] - full["lm_head_forward_flops_per_token"]) * tokens / full_layers
    good = measured == run["job_train_flops_per_step"] and per_layer == per_layer_6b
    ok &= good
    rows.append({"variant": v, "tp": tp, "layers": layers, "seq_len": seq, "sequences": batch,
                 "measured_flops_step": measured, "analytic_flops_step": run["job_train_flops_per_step"],
                 "tp_repeated_flops_step": repeated, "measured_train_flops_per_layer": per_layer,
                 "analytic_6b_train_flops_per_layer": per_layer_6b, "equal": good})
    print(f"{v:5s} measured {measured:.6e} == analytic {run['job_train_flops_per_step']:.6e}; per layer "
          f"{per_layer:.6e} vs 6.3B {per_layer_6b:.6e} (TP repeated {repeated:.3e}) -> {'ok' if good else 'FAIL'}")
json.dump(rows, open("bench/results/flops_6b_check.json", "w"), indent=1)
sys.exit(0 if ok else 1)
PY
