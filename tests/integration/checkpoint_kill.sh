#!/usr/bin/env bash
# kill -9 of a rank in the middle of a checkpoint save leaves the previous checkpoint complete and
# `latest` pointing at it; resuming from it then reproduces the uninterrupted run exactly. The save
# is stopped at a known moment by the fault-injection hook (LRKV_CHECKPOINT_PAUSE_AT, see
# runtime/test_hooks.h): after the shards are written (a non-zero rank is killed), after
# the manifest is written, and after the rename but before `latest` changes (rank 0 is killed).
#   checkpoint_kill.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR MPIRUN...
set -uo pipefail
. "$(dirname "$0")/lib.sh"
setup ckpt-kill "$@"
train=("${mpirun[@]}" -np 2 -x LRKV_TEST_HOOKS -x LRKV_CHECKPOINT_PAUSE_AT "$bin/lrkv" train
       --config="$src/configs/brown-tiny-lrkv.textproto" --data_dir="$data" --model.vocab_size=2048
       --model.n_layers=2 --model.seq_len=32 --train.global_batch=8 --train.eval_batches=1
       --train.peak_flops=1e9 --dp=2 --save_every=2)
export LRKV_TEST_HOOKS=1 LRKV_CHECKPOINT_PAUSE_AT=none
"${train[@]}" --steps=4 --out_dir="$w/uninterrupted" --checkpoint_dir="$w/ck_reference" >"$w/reference.log" 2>&1 ||
  { cat "$w/reference.log"; exit 1; }
for stage in shards_written manifest_written renamed; do
  ck="$w/ck_$stage"
  LRKV_CHECKPOINT_PAUSE_AT=none "${train[@]}" --steps=2 --out_dir="$w/$stage" --checkpoint_dir="$ck" \
    >"$w/$stage-first.log" 2>&1 || { cat "$w/$stage-first.log"; exit 1; }
  LRKV_CHECKPOINT_PAUSE_AT=$stage "${train[@]}" --steps=4 --out_dir="$w/$stage" --checkpoint_dir="$ck" --resume \
    >"$w/$stage-killed.log" 2>&1 &
  job=$!
  pid=""
  for _ in $(seq 300); do
    pid=$(grep -o "paused at $stage (pid [0-9]*)" "$w/$stage-killed.log" | tail -1 | grep -o "[0-9]*")
    [ -n "$pid" ] && break
    sleep 0.1
  done
  [ -n "$pid" ] || { echo "FAIL: $stage: the save never paused"; cat "$w/$stage-killed.log"; kill $job; exit 1; }
  kill -9 "$pid"
  start=$SECONDS
  wait $job; status=$?
  latest="$(cat "$ck/latest")"
  if "$bin/lrkv" checkpoint inspect "$ck" >/dev/null && [ $status -ne 0 ] && [ "$latest" = step_00000002 ] &&
     LRKV_CHECKPOINT_PAUSE_AT=none "${train[@]}" --steps=4 --out_dir="$w/$stage-resumed" --checkpoint_dir="$ck" \
       --resume >"$w/$stage-resumed.log" 2>&1 &&
     /usr/bin/python3 - "$w/uninterrupted/metrics.jsonl" "$w/$stage-resumed/metrics.jsonl" <<'PY'
import json, sys
ref = {r["step"]: r["loss"] for r in map(json.loads, open(sys.argv[1]))}
got = {r["step"]: r["loss"] for r in map(json.loads, open(sys.argv[2]))}
sys.exit(0 if got and all(ref[s] == l for s, l in got.items()) and max(got) == 4 else 1)
PY
  then
    echo "ok: killed pid $pid at $stage: job ended (exit $status) in $((SECONDS - start)) s, latest still $latest," \
         "which resumes to the uninterrupted run's losses"
  else
    echo "FAIL: $stage: exit $status, latest $latest"; tail -5 "$w/$stage-killed.log"; failures=$((failures + 1))
  fi
done
[ $failures -eq 0 ]
