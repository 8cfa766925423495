#!/bin/bash
# bf16 mixed precision (train.precision = BF16):
#  - the demo config (configs/brown-tiny-lrkv.textproto, at the tests' vocabulary of 2048) trained
#    300 steps in one process ends within 1% of the FP32 run's validation loss;
#  - checkpoints keep the fp32 masters and moments: a BF16 run stopped at step 5 and resumed (one
#    process, and tp2 x dp2 with ZeRO-1) gives the uninterrupted run's losses and final parameters
#    bit for bit; the same checkpoint continues in FP32, its losses within 1% of the BF16 run's;
#  - the checkpoints reshard: tp2 x dp2 + ZeRO-1's (its fp32 masters sharded over dp, saved as ranged
#    blocks) resumed in one process, and one process's (whole masters) resumed at tp2 x dp2 + ZeRO-1,
#    each continue the run it came from within the bf16 layout tolerance (5e-3, layouts.sh).
# (Layout equivalence in bf16 is parallel.layouts_bf16.*, the memory model's bf16 figures
# parallel.memory.)
# usage: precision.sh BIN SRC WORK MPIRUN...
. "$(dirname "$0")/lib.sh"
setup precision "$@"

demo=(--config="$src/configs/brown-tiny-lrkv.textproto" --data_dir="$data" --model.vocab_size=2048 --steps=300
      --train.eval_batches=8 --train.log_every=50 --train.peak_flops=1e9)
train_run demo-FP32 1 "${demo[@]}" --train.precision=FP32
train_run demo-BF16 1 "${demo[@]}" --train.precision=BF16

short=("${small_train[@]}" --steps=10 --train.eval_every=5 --train.precision=BF16)
big=(--tp=2 --dp=2 --zero1)
train_run single 1 "${short[@]}" --checkpoint_dir="$w/ck_single" --save_every=5
train_run big 4 "${short[@]}" "${big[@]}" --checkpoint_dir="$w/ck_big" --save_every=5
at_step5 "$w/ck_single" "$w/ck_single5"
train_run single_resumed 1 "${short[@]}" --checkpoint_dir="$w/ck_single5" --resume
at_step5 "$w/ck_big" "$w/ck_big5"
train_run big_resumed 4 "${short[@]}" "${big[@]}" --checkpoint_dir="$w/ck_big5" --resume
at_step5 "$w/ck_big" "$w/ck_big_to_single"
train_run big_to_single 1 "${short[@]}" --checkpoint_dir="$w/ck_big_to_single" --resume
at_step5 "$w/ck_single" "$w/ck_single_to_big"
train_run single_to_big 4 "${short[@]}" "${big[@]}" --checkpoint_dir="$w/ck_single_to_big" --resume
at_step5 "$w/ck_single" "$w/ck_fp32"
train_run continued_fp32 1 "${short[@]}" --train.precision=FP32 --checkpoint_dir="$w/ck_fp32" --resume

/usr/bin/python3 - "$w" <<'PY' && ok "bf16: demo, exact resume, resharded resume, FP32 continuation" || fail "bf16 checks"
import glob, json, os, sys
import numpy as np
w = sys.argv[1]
def rows(tag):
    return {r["step"]: r for r in map(json.loads, open(f"{w}/{tag}/metrics.jsonl"))}
def params(tag):
    return {os.path.basename(p): np.load(p) for p in glob.glob(f"{w}/{tag}/params/*.npy")}
bad = 0
def report(good, text):
    global bad
    bad += not good
    print(("ok   " if good else "FAIL ") + text)
fp32, bf16 = rows("demo-FP32")[300]["val_loss"], rows("demo-BF16")[300]["val_loss"]
rel = abs(bf16 - fp32) / fp32
report(rel < 0.01, f"demo 300 steps: val_loss BF16 {bf16:.4f}, FP32 {fp32:.4f}: {100 * rel:.2f}% apart (< 1%)")
for tag, ref in (("single_resumed", "single"), ("big_resumed", "big")):
    a, b = rows(tag), rows(ref)
    same_loss = all(a[s]["loss"] == b[s]["loss"] for s in range(6, 11))
    pa, pb = params(tag), params(ref)
    same_params = pa.keys() == pb.keys() and all(pa[k].dtype == np.float32 and pa[k].tobytes() == pb[k].tobytes()
                                                 for k in pa)
    report(same_loss and same_params, f"{ref} resumed at step 5 in BF16: losses 6-10 "
           f"{'identical' if same_loss else 'DIFFER'}, {len(pa)} fp32 parameters "
           f"{'bit-identical' if same_params else 'DIFFER'}")
for tag, ref in (("big_to_single", "big"), ("single_to_big", "single")):
    a, b = rows(tag), rows(ref)
    worst = max(abs(a[s]["loss"] - b[s]["loss"]) / b[s]["loss"] for s in range(6, 11))
    report(worst < 5e-3, f"{ref}'s BF16 checkpoint resumed at the other layout: losses 6-10 within {worst:.1e} "
           f"of {ref}'s (< 5e-3)")
a, b = rows("continued_fp32"), rows("single")
worst = max(abs(a[s]["loss"] - b[s]["loss"]) / b[s]["loss"] for s in range(6, 11))
report(worst < 0.01, f"the BF16 checkpoint continued in FP32: losses 6-10 within {worst:.1e} of BF16's (< 1%)")
sys.exit(1 if bad else 0)
PY
finish precision
