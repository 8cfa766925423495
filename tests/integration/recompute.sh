#!/bin/bash
# Activation recomputation (train.recompute): for every variant, in one process and for LRKV and
# MLRA at dp2 x pp2 x tp2 (8 ranks, 2 micro-batches), ATTENTION and BLOCK give NONE's losses and
# final parameters bit for bit and the same model FLOPs (flops_step); their hardware FLOPs
# (hardware_flops_step) exceed those by exactly the recomputed forward work `lrkv flops` predicts.
# usage: recompute.sh BIN SRC WORK MPIRUN...
. "$(dirname "$0")/lib.sh"
setup recompute "$@"

run() {  # TAG MODE NP [ARGS...]
  local tag="$1" mode="$2" np="$3"; shift 3
  local args=("${small_train[@]}" "$@" --steps=6 --train.eval_batches=1 --train.recompute="$mode"
              --out_dir="$w/$tag-$mode" --train.save_params_dir="$w/$tag-$mode/params")
  if [ "$np" = 1 ]; then "$bin/lrkv" train "${args[@]}" >"$w/$tag-$mode.log" 2>&1
  else "${mpirun[@]}" -np "$np" "$bin/lrkv" train "${args[@]}" >"$w/$tag-$mode.log" 2>&1; fi \
    || { fail "$tag $mode"; tail -5 "$w/$tag-$mode.log"; }
}

compare() {  # TAG PREDICT: ATTENTION and BLOCK against NONE
  /usr/bin/python3 - "$w" "$1" "$2" <<'PY'
import glob, json, os, sys
import numpy as np
w, tag, predict = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
def metrics(mode):
    return [json.loads(l) for l in open(f"{w}/{tag}-{mode}/metrics.jsonl")]
def params(mode):
    return {os.path.basename(p): np.load(p) for p in glob.glob(f"{w}/{tag}-{mode}/params/*.npy")}
base, base_p = metrics("NONE"), params("NONE")
bad = 0
for mode in ("ATTENTION", "BLOCK"):
    rows, p = metrics(mode), params(mode)
    same_loss = [r["loss"] for r in rows] == [r["loss"] for r in base]
    same_params = set(p) == set(base_p) and all(p[k].tobytes() == base_p[k].tobytes() for k in p)
    same_model = all(r["flops_step"] == b["flops_step"] for r, b in zip(rows, base))
    extra = rows[-1]["hardware_flops_step"] - rows[-1]["flops_step"]
    want = json.load(open(f"{w}/{tag}-{mode}.flops.json"))["recompute_forward_flops_per_token"] * 8 * 32
    exact = not predict or extra == want
    ok = same_loss and same_params and same_model and extra > 0 and exact
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {tag} {mode}: losses {'identical' if same_loss else 'DIFFER'}, "
          f"{len(p)} parameters {'bit-identical' if same_params else 'DIFFER'}, model FLOPs "
          f"{'equal' if same_model else 'DIFFER'}, recomputed {extra} FLOPs/step"
          + (f" (predicted {want:.0f})" if predict else ""))
assert all(b["hardware_flops_step"] == b["flops_step"] for b in base), "NONE recomputes nothing"
sys.exit(1 if bad else 0)
PY
}

flops_json() {  # TAG MODE CONFIG
  "$bin/lrkv" flops --config="$3" --model.vocab_size=2048 --model.n_layers=2 --model.seq_len=32 \
    --train.recompute="$2" --format=json >"$w/$1-$2.flops.json"
}

for config in "$src"/configs/brown-tiny-*.textproto; do
  tag="$(basename "$config" .textproto)"; tag="${tag#brown-tiny-}"
  for mode in NONE ATTENTION BLOCK; do
    run "$tag" "$mode" 1 --config="$config"
    flops_json "$tag" "$mode" "$config"
  done
  compare "$tag" 1 && ok "$tag: recomputation changes no bit" || fail "$tag"
done
for tag in lrkv mlra; do
  for mode in NONE ATTENTION BLOCK; do
    run "$tag-8ranks" "$mode" 8 --config="$src/configs/brown-tiny-$tag.textproto" --dp=2 --pp=2 --tp=2 --micro_batches=2
    flops_json "$tag-8ranks" "$mode" "$src/configs/brown-tiny-$tag.textproto"
  done
  compare "$tag-8ranks" 0 && ok "$tag dp2 x pp2 x tp2: recomputation changes no bit" || fail "$tag 8 ranks"
done
finish recompute
