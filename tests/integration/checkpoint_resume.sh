#!/usr/bin/env bash
# Checkpoints resume exactly and reshard to any layout, for one attention variant:
#  - exact resume: stopped at step 5 and resumed at the same layout (one process, and
#    dp2 x pp2 x tp2 with ZeRO-1), the losses of steps 6-10 and the final parameters are
#    bit-identical to the uninterrupted run's;
#  - resharding: the step-5 checkpoint of dp2 x pp2 x tp2 + ZeRO-1 continued in one process, tp2,
#    pp2, dp2 + ZeRO-1; and one process's continued at dp2 x pp2 x tp2: losses of steps 6-10 and
#    the final parameters within 1e-5 relative of the uninterrupted run. Equal losses at every
#    step also show the data stream continuing where it stopped, whatever the DP size.
#   checkpoint_resume.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR CONFIG MPIRUN...
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # at_step5
bin="$1"; src="$2"; work="$3"; config="$4"; shift 4
mpirun=("$@")
data="$work/brown"
"$bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null
name="ckpt-$(basename "$config" .textproto)"
rm -rf "${work:?}/$name"; mkdir -p "$work/$name"; w="$work/$name"
common=(--config="$src/configs/$config" --data_dir="$data" --steps=10 --model.vocab_size=2048
        --model.n_layers=2 --model.seq_len=32 --train.global_batch=8 --train.lr=5e-4 --train.adam_eps=1e-6
        --train.warmup_steps=3 --train.eval_every=5 --train.eval_batches=2 --train.log_every=100
        --train.peak_flops=1e9)
big=(--dp=2 --pp=2 --tp=2 --micro_batches=2 --zero1)
run() {  # run TAG NP FLAGS...
  local tag="$1" np="$2"; shift 2
  local cmd=("$bin/lrkv")
  [ "$np" -gt 1 ] && cmd=("${mpirun[@]}" -np "$np" "$bin/lrkv")
  "${cmd[@]}" train "${common[@]}" --out_dir="$w/$tag" --train.save_params_dir="$w/$tag/params" "$@" \
    >"$w/$tag.log" 2>&1 || { cat "$w/$tag.log"; exit 1; }
}
run big 8 "${big[@]}" --checkpoint_dir="$w/ck_big" --save_every=5
run single 1 --checkpoint_dir="$w/ck_single" --save_every=5
at_step5 "$w/ck_big" "$w/ck_big5"; run big_resumed 8 "${big[@]}" --checkpoint_dir="$w/ck_big5" --resume
at_step5 "$w/ck_single" "$w/ck_single5"; run single_resumed 1 --checkpoint_dir="$w/ck_single5" --resume
for target in "from_big_single:1:" "from_big_tp2:2:--tp=2" "from_big_pp2:2:--pp=2 --micro_batches=4" \
              "from_big_dp2_zero1:2:--dp=2 --zero1"; do
  IFS=: read -r tag np flags <<<"$target"
  at_step5 "$w/ck_big" "$w/ck_$tag"
  # shellcheck disable=SC2086
  run "$tag" "$np" $flags --checkpoint_dir="$w/ck_$tag" --resume
done
at_step5 "$w/ck_single" "$w/ck_from_single_big"
run from_single_big 8 "${big[@]}" --checkpoint_dir="$w/ck_from_single_big" --resume
grep -q "resumed from .*step_00000005: step 5" "$w/from_big_tp2.log"
/usr/bin/python3 - "$w" <<'PY'
import glob, json, os, sys
import numpy as np
w = sys.argv[1]
def load(tag):
    rows = {r["step"]: r for r in map(json.loads, open(f"{w}/{tag}/metrics.jsonl"))}
    params = {os.path.basename(p)[:-4]: np.load(p) for p in glob.glob(f"{w}/{tag}/params/*.npy")}
    return rows, params
ok = True
def check(tag, ref, exact):
    global ok
    rows, params = load(tag)
    ref_rows, ref_params = load(ref)
    assert sorted(rows) == list(range(6, 11)), (tag, sorted(rows))
    loss = max(abs(rows[s]["loss"] - ref_rows[s]["loss"]) / abs(ref_rows[s]["loss"]) for s in rows)
    assert params.keys() == ref_params.keys(), tag
    if exact:
        good = loss == 0 and all(np.array_equal(params[k], ref_params[k]) for k in params)
        print(f"{tag} vs {ref}: losses of steps 6-10 {'identical' if loss == 0 else f'differ ({loss:.1e})'}, "
              f"parameters {'bit-identical' if good else 'DIFFER'} -> {'ok' if good else 'FAIL'}")
    else:
        p = max(np.linalg.norm(params[k] - ref_params[k]) / max(np.linalg.norm(ref_params[k]), 1e-30) for k in params)
        good = loss < 1e-5 and p < 1e-5
        print(f"{tag} vs {ref}: loss rel {loss:.1e}, params rel {p:.1e} -> {'ok' if good else 'FAIL'}")
    ok &= good
check("single_resumed", "single", True)
check("big_resumed", "big", True)
for tag in ("from_big_single", "from_big_tp2", "from_big_pp2", "from_big_dp2_zero1"):
    check(tag, "big", False)
check("from_single_big", "single", False)
sys.exit(0 if ok else 1)
PY
