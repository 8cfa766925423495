#!/usr/bin/env bash
# Graceful stop and non-finite steps, under mpirun (2 ranks):
#  - SIGUSR1 to mpirun (forwarded to the ranks), and SIGTERM to one rank only: the job saves a
#    checkpoint at the next step boundary and exits 0; resumed, it reproduces the uninterrupted
#    run's losses exactly;
#  - a NaN gradient (fault injection LRKV_TEST_NAN_GRAD) stops the run by default with a message
#    naming the step and the parameter; with train.on_nonfinite=SKIP the step is skipped and
#    logged, and more skips than train.max_skipped_steps stop the run.
#   stop_and_nonfinite.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR MPIRUN...
set -uo pipefail
. "$(dirname "$0")/lib.sh"
setup stop "$@"
train=("${mpirun[@]}" -np 2 -x LRKV_TEST_HOOKS -x LRKV_TEST_NAN_GRAD "$bin/lrkv" train --config="$src/configs/brown-tiny-lrkv.textproto"
       --data_dir="$data" --model.vocab_size=2048 --model.n_layers=2 --model.seq_len=32 --train.global_batch=8
       --train.eval_batches=1 --train.eval_every=0 --train.log_every=1 --train.peak_flops=1e9 --dp=2)
export LRKV_TEST_HOOKS=1 LRKV_TEST_NAN_GRAD=0

# stop_case TAG SIGNAL TARGET(mpirun|rank)
stop_case() {
  local tag="$1" sig="$2" target="$3"
  "${train[@]}" --steps=400 --out_dir="$w/$tag" --checkpoint_dir="$w/ck_$tag" >"$w/$tag.log" 2>&1 &
  local job=$! pid=""
  for _ in $(seq 600); do grep -q "^step     3/" "$w/$tag.log" && break; sleep 0.1; done
  if [ "$target" = mpirun ]; then pid=$job; else pid=$(pgrep -f "lrkv train.*--out_dir=$w/$tag" | tail -1); fi
  kill -"$sig" "$pid"
  local start=$SECONDS status
  wait $job; status=$?
  local stopped; stopped=$(grep -o "stopped by SIGTERM/SIGINT/SIGUSR1 after step [0-9]*" "$w/$tag.log" | grep -o "[0-9]*$")
  if [ $status -ne 0 ] || [ -z "$stopped" ] || [ "$(cat "$w/ck_$tag/latest")" != "$(printf 'step_%08d' "$stopped")" ]; then
    fail "$tag: exit $status, stopped at '${stopped}'"; tail -5 "$w/$tag.log"; return
  fi
  local total=$((stopped + 2))
  "${train[@]}" --steps=$total --out_dir="$w/$tag-resumed" --checkpoint_dir="$w/ck_$tag" --resume \
    >"$w/$tag-resumed.log" 2>&1 || { fail "$tag: resume failed"; tail -5 "$w/$tag-resumed.log"; return; }
  "${train[@]}" --steps=$total --out_dir="$w/$tag-reference" >"$w/$tag-reference.log" 2>&1 || { fail "$tag: reference"; return; }
  # The learning rate is still in warm-up (60 steps), where it does not depend on train.steps.
  if /usr/bin/python3 - "$w/$tag-reference/metrics.jsonl" "$w/$tag-resumed/metrics.jsonl" "$stopped" "$total" <<'PY'
import json, sys
ref = {r["step"]: r["loss"] for r in map(json.loads, open(sys.argv[1]))}
got = {r["step"]: r["loss"] for r in map(json.loads, open(sys.argv[2]))}
first, last = int(sys.argv[3]) + 1, int(sys.argv[4])
sys.exit(0 if sorted(got) == list(range(first, last + 1)) and all(ref[s] == l for s, l in got.items()) else 1)
PY
  then
    echo "ok: $tag: SIG$sig to $target -> checkpoint at step $stopped, exit 0 after $((SECONDS - start)) s;" \
         "resumed to step $total with the uninterrupted run's losses"
  else
    fail "$tag: resumed losses differ"
  fi
}
stop_case usr1_mpirun USR1 mpirun
stop_case term_rank TERM rank

out="$(LRKV_TEST_NAN_GRAD=3 "${train[@]}" --steps=5 --out_dir="$w/nan_stop" 2>&1)"; status=$?
expected="step 3: non-finite gradients (grad_norm nan), first in parameter embed.weight"
if [ $status -ne 0 ] && [ "$(grep -cF "$expected" <<<"$out")" -eq 2 ]; then
  echo "ok: NaN gradient stops the run on both ranks: $(grep -F "$expected" <<<"$out" | head -1 | cut -c1-160)"
else
  fail "NaN stop: exit $status"; echo "$out" | tail -3
fi
out="$(LRKV_TEST_NAN_GRAD=3 "${train[@]}" --steps=5 --out_dir="$w/nan_skip" --train.on_nonfinite=SKIP 2>&1)"; status=$?
if [ $status -eq 0 ] && grep -q "step skipped (1 of at most 10)" <<<"$out" &&
   /usr/bin/python3 -c "
import json, math, sys
rows = [json.loads(l) for l in open('$w/nan_skip/metrics.jsonl')]
sys.exit(0 if [r['step'] for r in rows if r.get('skipped')] == [3] and len(rows) == 5
         and all(math.isfinite(r['loss']) for r in rows[3:]) else 1)"; then
  echo "ok: train.on_nonfinite=SKIP skips step 3 only, logs it, and training goes on"
else
  fail "NaN skip: exit $status"; echo "$out" | tail -3
fi
out="$(LRKV_TEST_NAN_GRAD=3+ "${train[@]}" --steps=8 --out_dir="$w/nan_many" --train.on_nonfinite=SKIP \
       --train.max_skipped_steps=2 2>&1)"; status=$?
if [ $status -ne 0 ] && grep -q "step 5: non-finite gradients.*3 steps skipped, more than train.max_skipped_steps (2)" <<<"$out"; then
  echo "ok: more skips than train.max_skipped_steps stop the run at step 5"
else
  fail "max skips: exit $status"; echo "$out" | tail -3
fi
[ $failures -eq 0 ]
