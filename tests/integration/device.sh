#!/bin/bash
# The trainer's device path (train.device) on the emulated device: host memory that code outside a
# kernel may not touch (the process aborts naming the tensor if it does), served by the CPU
# kernels. A GPU run's logic (parameters, gradients, masters, AdamW state and activations on the
# device; the host sampling token ids and reading scalars; checkpoints and parameter dumps through
# host copies; MPI carrying device tensors through host buffers) thereby runs where no GPU is:
#  - in FP32 and BF16, one process and tp2 x dp2 + ZeRO-1, pp2 x dp2 (1F1B, tied embeddings on the
#    two ends) and pp2 x tp2: losses, gradient norms, validation losses and final parameters equal
#    the CPU run's bit for bit, and so do runs with recomputation (BLOCK; ATTENTION under BF16 at
#    pp2 x dp2) against the CPU's without; the GEMM peak (MFU's reference) is measured on the device;
#  - checkpoints are interchangeable: the emulated run's step-5 checkpoint resumed on the CPU, and
#    the CPU's resumed on the emulated device, give the uninterrupted run bit for bit (a change of
#    layout at resume is checkpoint_resume.sh's, to float tolerance);
#  - a NaN gradient on the device (LRKV_TEST_NAN_GRAD) is found and named as on the CPU;
#  - --device=cuda where there is no GPU stops at start-up with a message, non-zero, on every rank.
# usage: device.sh BIN SRC WORK MPIRUN...
. "$(dirname "$0")/lib.sh"
setup device "$@"

short=("${small_train[@]}" --steps=8 --train.eval_every=4)
layouts=("1:" "4:--tp=2 --dp=2 --zero1" "4:--pp=2 --dp=2" "4:--pp=2 --tp=2")
pairs=()
for precision in FP32 BF16; do
  for entry in "${layouts[@]}"; do
    np=${entry%%:*} flags=${entry#*:}
    tag="${precision}_np${np}_$(tr -d ' =-' <<<"$flags")"
    # shellcheck disable=SC2086  # the layout flags split into words
    train_run "cpu_$tag" "$np" "${short[@]}" --train.precision=$precision $flags --device=cpu
    # shellcheck disable=SC2086
    train_run "emu_$tag" "$np" "${short[@]}" --train.precision=$precision $flags --device=emulated
    pairs+=("cpu_$tag:emu_$tag")
  done
done
# Recomputation on the device: BLOCK and ATTENTION redo the same ops, so they equal the CPU without it.
train_run emu_FP32_np1_BLOCK 1 "${short[@]}" --train.precision=FP32 --train.recompute=BLOCK --device=emulated
pairs+=("cpu_FP32_np1_:emu_FP32_np1_BLOCK")
train_run emu_BF16_np4_pp2dp2_ATTENTION 4 "${short[@]}" --train.precision=BF16 --pp=2 --dp=2 --train.recompute=ATTENTION \
  --device=emulated
pairs+=("cpu_BF16_np4_pp2dp2:emu_BF16_np4_pp2dp2_ATTENTION")
grep -q "device emulated" "$w/emu_FP32_np1_.log" && ok "the run announces its device" || fail "no device line"

# The GEMM peak measured on the device (no train.peak_flops).
train_run emu_peak 1 "${small_train[@]}" --steps=1 --train.peak_flops=0 --device=emulated
grep -q "f32 GEMM peak measured on every rank's emulated" "$w/emu_peak.log" && ok "peak measured on the device" \
  || { fail "peak measurement"; grep MFU "$w/emu_peak.log"; }

# Checkpoints across devices: step 5 of one, resumed on the other.
ck=(--steps=10 --train.eval_every=5 --save_every=5)
train_run emu_ck 4 "${small_train[@]}" "${ck[@]}" --tp=2 --dp=2 --zero1 --device=emulated --checkpoint_dir="$w/ck_emu"
train_run cpu_ck 1 "${small_train[@]}" "${ck[@]}" --device=cpu --checkpoint_dir="$w/ck_cpu"
at_step5 "$w/ck_emu" "$w/ck_emu5"
train_run emu_to_cpu 4 "${small_train[@]}" "${ck[@]}" --tp=2 --dp=2 --zero1 --device=cpu --checkpoint_dir="$w/ck_emu5" \
  --resume
at_step5 "$w/ck_cpu" "$w/ck_cpu5"
train_run cpu_to_emu 1 "${small_train[@]}" "${ck[@]}" --device=emulated --checkpoint_dir="$w/ck_cpu5" --resume

/usr/bin/python3 - "$w" "${pairs[@]}" <<'PY' && ok "emulated device equals the CPU bit for bit" || fail "device comparison"
import glob, json, os, sys
import numpy as np
w, pairs = sys.argv[1], [p.split(":") for p in sys.argv[2:]]
def rows(tag):
    return {r["step"]: r for r in map(json.loads, open(f"{w}/{tag}/metrics.jsonl"))}
def params(tag):
    return {os.path.basename(p): np.load(p) for p in glob.glob(f"{w}/{tag}/params/*.npy")}
bad = 0
def same(a, b, steps, what):
    global bad
    ra, rb = rows(a), rows(b)
    keys = ("loss", "grad_norm", "val_loss")
    equal = all((k in ra[s]) == (k in rb[s]) and ra[s].get(k) == rb[s].get(k) for s in steps for k in keys)
    pa, pb = params(a), params(b)
    equal_params = len(pa) > 0 and pa.keys() == pb.keys() and all(pa[k].tobytes() == pb[k].tobytes() for k in pa)
    bad += not (equal and equal_params)
    print(f"{'ok  ' if equal and equal_params else 'FAIL'} {what}: losses, grad norms, val losses of steps "
          f"{steps[0]}-{steps[-1]} {'identical' if equal else 'DIFFER'}; {len(pa)} parameters "
          f"{'bit-identical' if equal_params else 'DIFFER'}")
for cpu, emu in pairs:
    same(cpu, emu, range(1, 9), f"{emu} against {cpu}")
same("emu_to_cpu", "emu_ck", range(6, 11), "the emulated tp2 x dp2 + ZeRO-1 checkpoint resumed on the CPU")
same("cpu_to_emu", "cpu_ck", range(6, 11), "the CPU checkpoint resumed on the emulated device")
sys.exit(1 if bad else 0)
PY

# A NaN gradient on the device: found and named, as on the CPU (stop_and_nonfinite.sh).
expect_error "NaN gradient on the device" "step 3: non-finite gradients (grad_norm nan), first in parameter embed.weight" \
  -- env LRKV_TEST_HOOKS=1 LRKV_TEST_NAN_GRAD=3 "$bin/lrkv" train "${small_train[@]}" --steps=5 --device=emulated \
  --out_dir="$w/nan"
# No GPU here: --device=cuda stops every rank at start-up, naming the reason.
expect_error "--device=cuda without a GPU" "train.device=CUDA: this" \
  -- timeout 120 "${mpirun[@]}" -np 2 "$bin/lrkv" train "${small_train[@]}" --steps=2 --dp=2 --device=cuda \
  --out_dir="$w/cuda"
expect_error "--device=tpu" "train.device" -- "$bin/lrkv" train "${small_train[@]}" --device=tpu --out_dir="$w/tpu"
finish device
