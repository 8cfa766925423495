#!/usr/bin/env bash
# Every way a user or a scheduler stops a job ends with the checkpoint written and exit 0, even when
# the save takes longer than Open MPI's grace period (about a second between mpirun's SIGTERM to the
# ranks and its SIGKILL): the test hook makes each save last 4 s.
#  - SIGTERM and SIGINT to launch/mpirun.sh (it turns them into SIGUSR1, which mpirun forwards);
#  - SIGTERM and SIGINT (Ctrl-C) to a single process; a second SIGINT aborts at once, saying so;
#  - the resumed run continues from the saved step;
#  - a bare mpirun says at start-up that its SIGTERM/Ctrl-C would lose the step.
# (SIGTERM to one rank and SIGUSR1 to mpirun: stop_and_nonfinite.sh; srun and scancel: slurm_train.sh.)
#   stop_signals.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR MPIRUN...
set -uo pipefail
. "$(dirname "$0")/lib.sh"
setup stop-signals "$@"
set -m  # background jobs in their own process groups: a non-interactive shell would start them ignoring SIGINT
export LRKV_TEST_HOOKS=1 LRKV_CHECKPOINT_PAUSE_AT=shards_written LRKV_CHECKPOINT_PAUSE_S=4
export MPIRUN_ARGS="-x LRKV_TEST_HOOKS -x LRKV_CHECKPOINT_PAUSE_AT -x LRKV_CHECKPOINT_PAUSE_S --oversubscribe"

# stop_case TAG "SIGNALS" COMMAND...: starts COMMAND, sends the signals at step 3 (a second one, if
# any, while the save is paused) and prints the exit status and the step it stopped at.
stop_case() {
  local tag="$1" signals="$2"; shift 2
  "$@" --steps=100000 --out_dir="$w/$tag" --checkpoint_dir="$w/ck_$tag" >"$w/$tag.log" 2>&1 &
  local job=$! first=1 sig
  wait_for "$w/$tag.log" "^step +3/" || { fail "$tag: never reached step 3"; kill -9 $job; return; }
  for sig in $signals; do
    [ $first = 1 ] || wait_for "$w/$tag.log" "paused at shards_written" 30
    kill -"$sig" $job; first=0
  done
  local start=$SECONDS
  wait $job; status=$?
  seconds=$((SECONDS - start))
  stopped="$(grep -o "stopped by SIGTERM/SIGINT/SIGUSR1 after step [0-9]*" "$w/$tag.log" | grep -o "[0-9]*$")"
}

for sig in TERM INT; do
  stop_case "wrapper_$sig" "$sig" "$src/launch/mpirun.sh" -np 2 "${small_train[@]}"
  if [ $status -eq 0 ] && [ -n "$stopped" ] && [ "$(cat "$w/ck_wrapper_$sig/latest")" = "$(printf 'step_%08d' "$stopped")" ] &&
     grep -q "saved step_.* (4\.[0-9]*s)" "$w/wrapper_$sig.log"; then
    ok "SIG$sig to launch/mpirun.sh: a 4 s save at step $stopped completed, exit 0 after $seconds s"
  else
    fail "SIG$sig to launch/mpirun.sh: exit $status, stopped at '$stopped'"; tail -5 "$w/wrapper_$sig.log"
  fi
done
export LRKV_CHECKPOINT_PAUSE_AT=none
if "$src/launch/mpirun.sh" -np 2 "${small_train[@]}" --steps=$((stopped + 2)) --out_dir="$w/wrapper_INT" \
     --checkpoint_dir="$w/ck_wrapper_INT" --resume >"$w/resumed.log" 2>&1 &&
   [ "$(metrics_steps "$w/wrapper_INT/metrics.jsonl")" = "$(seq -s ' ' 1 $((stopped + 2)))" ] &&
   grep -q "resumed from $w/ck_wrapper_INT/$(printf 'step_%08d' "$stopped")" "$w/resumed.log"; then
  ok "the run stopped by SIGINT resumes at step $((stopped + 1)) (metrics steps 1-$((stopped + 2)))"
else
  fail "resume after SIGINT"; tail -3 "$w/resumed.log"
fi
export LRKV_CHECKPOINT_PAUSE_AT=shards_written

for sig in TERM INT; do
  stop_case "single_$sig" "$sig" "$bin/lrkv" train "${small_train[@]}"
  if [ $status -eq 0 ] && [ -n "$stopped" ] && [ "$(cat "$w/ck_single_$sig/latest")" = "$(printf 'step_%08d' "$stopped")" ]; then
    ok "SIG$sig to a single process: checkpoint of step $stopped written (4 s save), exit 0"
  else
    fail "SIG$sig to a single process: exit $status, stopped at '$stopped'"; tail -5 "$w/single_$sig.log"
  fi
done
stop_case single_twice "INT INT" "$bin/lrkv" train "${small_train[@]}"
if [ $status -eq 130 ] && grep -q "second interrupt: aborting now, without the checkpoint of this step" "$w/single_twice.log" &&
   [ ! -e "$w/ck_single_twice/latest" ] && [ $seconds -lt 4 ]; then
  ok "a second Ctrl-C aborts at once (exit 130, in $seconds s), saying so; nothing half-written is left as latest"
else
  fail "second SIGINT: exit $status after $seconds s"; tail -3 "$w/single_twice.log"
fi
stop_case wrapper_twice "INT INT" "$src/launch/mpirun.sh" -np 2 "${small_train[@]}"
if [ $status -ne 0 ] && grep -q "SIGINT again: aborting the job without saving" "$w/wrapper_twice.log" && [ $seconds -lt 15 ]; then
  ok "a second Ctrl-C to launch/mpirun.sh aborts the job (exit $status in $seconds s)"
else
  fail "second SIGINT to mpirun.sh: exit $status after $seconds s"; tail -3 "$w/wrapper_twice.log"
fi

out="$(LRKV_CHECKPOINT_PAUSE_AT=none "${mpirun[@]}" -np 2 "$bin/lrkv" train "${small_train[@]}" --steps=1 --dp=2 --out_dir="$w/bare" 2>&1)"
grep -q "note: under a bare mpirun, SIGTERM or Ctrl-C kills the ranks before they can save" <<<"$out" &&
  ok "a bare mpirun launch says that its SIGTERM/Ctrl-C would lose the step" || { fail "bare mpirun note"; echo "$out" | tail -3; }
finish stop_signals
