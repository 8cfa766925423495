#!/usr/bin/env bash
# Training launched through a real Slurm cluster (two simulated nodes on this machine, started and
# stopped here): launch/slurm/train.sbatch with srun --mpi=pmix and with mpirun inside the
# allocation; a launch whose MPI world is not the allocation refused (lrkv started bare in a batch
# script of 2 tasks, and srun without PMIx); preemption by scancel --signal=USR1 (checkpoint, exit 0)
# and the resubmitted job resuming; a rank killed mid-training ending the step fast with the rank
# named. The cluster goes down on every exit path.
#   slurm_train.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR
# Exit 77 (skip) when not root. WATCHDOG_S (default 200): the whole test's time limit.
set -uo pipefail
bin="$1"; src="$2"; work="$3"
[ "$(id -u)" -eq 0 ] || { echo "slurm_train: needs root for slurmd; skipping"; exit 77; }
data="$work/brown"
"$bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null || exit 1
jobs="$work/slurm-jobs"
rm -rf "$jobs"; mkdir -p "$jobs"
# A short path: PMIx puts unix sockets under the cluster's TmpFS, and those paths are limited to 108 bytes.
cluster="/tmp/lrkv-slurm-$$"
# On exit: the watchdog goes first (the subshell before its sleep, or it would wake and signal us)
# and stray TERMs are ignored while the cluster comes down.
trap 'trap "" TERM INT HUP; kill $watchdog $(pgrep -P $watchdog) 2>/dev/null; "$src/tests/slurm/cluster_down.sh" "$cluster"; rm -rf "$cluster"' EXIT
trap 'echo "slurm_train: stopped (a signal, or the watchdog after ${WATCHDOG_S:-200} s)"; exit 143' TERM INT HUP  # the EXIT trap still runs
# Whatever hangs, the cluster comes down well before CTest's timeout (which kills without a trap).
# Its output goes nowhere: CTest waits for every holder of the test's stdout to exit.
( sleep "${WATCHDOG_S:-200}"; kill -TERM $$ ) >/dev/null 2>&1 &
watchdog=$!
"$src/tests/slurm/cluster_up.sh" "$cluster" || exit $?
. "$cluster/env.sh"
cd "$jobs" || exit 1

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
train=(--config="$src/configs/brown-tiny-lrkv.textproto" --data_dir="$data" --model.vocab_size=2048
       --model.n_layers=2 --model.seq_len=32 --train.warmup_steps=2 --train.eval_every=4 --train.eval_batches=1
       --train.log_every=1 --train.peak_flops=1e11)

# run_job TIMEOUT SBATCH_ARGS...: submits, polls every 0.2 s (sbatch --wait polls after 2, 8, 32 s),
# prints "<job id> <state> <exit code>".
run_job() {
  local timeout="$1" id line state code
  shift
  id="$(sbatch --parsable "$@")" || { echo "- SUBMIT_FAILED 1"; return; }
  local deadline=$((SECONDS + timeout))
  while :; do
    line="$(scontrol -o show job "$id" 2>/dev/null)"
    state="$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$line")"
    case "$state" in PENDING|CONFIGURING|RUNNING|COMPLETING|"") ;; *) break ;; esac
    if [ $SECONDS -ge $deadline ]; then scancel "$id"; echo "$id TIMEOUT 124"; return; fi
    sleep 0.2
  done
  code="$(sed -n 's/.* ExitCode=\([0-9]*\):.*/\1/p' <<<"$line")"
  echo "$id $state $code"
}

# check_run NAME LAUNCHER: a 6-step dp2 run across both nodes through train.sbatch.
check_run() {
  local name="$1" launcher="$2" t0=$SECONDS result id state code out="$jobs/$1"
  result="$(LAUNCHER="$launcher" LRKV_BIN="$bin/lrkv" run_job 90 -N 2 --ntasks-per-node=1 -o "$jobs/$name.log" \
            "$src/launch/slurm/train.sbatch" "${train[@]}" --steps=6 --out_dir="$out")"
  read -r id state code <<<"$result"
  local log="$jobs/$name.log"
  if [ "$state" != COMPLETED ] || [ "$code" != 0 ]; then
    fail "$name: job $id ended $state, exit $code"; tail -20 "$log" 2>/dev/null; return
  fi
  grep -qF "launch: 2 ranks on 2 nodes (1 per node), started by $launcher" "$log" || { fail "$name: no launch line"; cat "$log"; return; }
  grep -qE "node 0 .*node1\): rank 0$" "$log" && grep -qE "node 1 .*node2\): rank 1$" "$log" ||
    { fail "$name: ranks not on node1 and node2"; cat "$log"; return; }
  local rows; rows="$(wc -l < "$out/metrics.jsonl" 2>/dev/null || echo 0)"
  [ "$rows" = 6 ] || { fail "$name: metrics.jsonl has $rows rows, expected 6"; return; }
  ok "$name: job $id, 6 steps on node1 + node2 in $((SECONDS - t0)) s"
}
check_run srun-pmix srun
check_run mpirun-in-allocation mpirun

# lrkv started directly in a batch script of a 2-task allocation (a forgotten srun): our check refuses.
t0=$SECONDS
read -r id state code <<<"$(run_job 60 -N 2 --ntasks-per-node=1 -o "$jobs/bare.log" \
                             --wrap "$bin/lrkv train ${train[*]} --steps=2 --out_dir=$jobs/bare")"
want="launch check: MPI world has 1 rank but the Slurm allocation has 2 tasks (SLURM_NTASKS=2)"
if [ "$code" != 0 ] && grep -qF "$want" "$jobs/bare.log"; then
  ok "bare lrkv in a 2-task allocation refused in $((SECONDS - t0)) s: $(grep -F "$want" "$jobs/bare.log" | head -1 | cut -c1-160)..."
else
  fail "bare lrkv in a 2-task allocation: job $id $state exit $code"; cat "$jobs/bare.log"
fi

# srun without PMIx: each task would be a world of one; Open MPI's own client refuses before our
# check can run (Debian's Open MPI has no PMI-1/2 client). Must fail, fast, naming the cause.
t0=$SECONDS
timeout 60 srun -N 2 --ntasks-per-node=1 --mpi=none "$bin/lrkv" train "${train[@]}" --steps=2 \
  --out_dir="$jobs/nopmix" > "$jobs/nopmix.log" 2>&1; status=$?
if [ $status -ne 0 ] && [ $status -ne 124 ] && grep -qE "PMI|OPAL ERROR|launch check" "$jobs/nopmix.log"; then
  ok "srun --mpi=none refused (exit $status) in $((SECONDS - t0)) s: $(grep -E "PMI|OPAL ERROR|launch check" "$jobs/nopmix.log" | head -1)"
else
  fail "srun --mpi=none: exit $status"; tail -20 "$jobs/nopmix.log"
fi

# Preemption: scancel --signal=USR1 reaches every task; the job saves a checkpoint at the next step
# and completes (exit 0); the resubmitted job resumes from it.
t0=$SECONDS
ck="$jobs/preempt-ck"
id="$(LRKV_BIN="$bin/lrkv" sbatch --parsable -N 2 --ntasks-per-node=1 -o "$jobs/preempt.log" \
      "$src/launch/slurm/train.sbatch" "${train[@]}" --steps=100000 --out_dir="$jobs/preempt" --checkpoint_dir="$ck")"
for _ in $(seq 300); do grep -q "^step     3/" "$jobs/preempt.log" 2>/dev/null && break; sleep 0.2; done
scancel --signal=USR1 "$id"
for _ in $(seq 300); do
  state="$(scontrol -o show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
  case "$state" in PENDING|CONFIGURING|RUNNING|COMPLETING|"") sleep 0.2 ;; *) break ;; esac
done
stopped="$(grep -o "stopped by SIGTERM/SIGINT/SIGUSR1 after step [0-9]*" "$jobs/preempt.log" | grep -o "[0-9]*$")"
if [ "$state" = COMPLETED ] && [ -n "$stopped" ]; then
  read -r id2 state2 code2 <<<"$(LRKV_BIN="$bin/lrkv" run_job 90 -N 2 --ntasks-per-node=1 -o "$jobs/resumed.log" \
      "$src/launch/slurm/train.sbatch" "${train[@]}" --steps=$((stopped + 2)) --out_dir="$jobs/resumed" \
      --checkpoint_dir="$ck" --resume)"
  if [ "$state2" = COMPLETED ] && grep -q "resumed from $ck/$(printf 'step_%08d' "$stopped")" "$jobs/resumed.log" &&
     [ "$(grep -c '"step"' "$jobs/resumed/metrics.jsonl")" = 2 ]; then
    ok "scancel --signal=USR1: job $id saved step $stopped and completed; job $id2 resumed from it ($((SECONDS - t0)) s)"
  else
    fail "resubmitted job $id2: $state2 exit $code2"; tail -10 "$jobs/resumed.log"
  fi
else
  fail "preempted job $id: state $state, stopped at '$stopped'"; tail -10 "$jobs/preempt.log"; scancel "$id"
fi

# SIGUSR1 to srun (forwarded to the tasks) and a plain scancel (SIGTERM to every task, as a time
# limit sends): the ranks save at the next step, with a save made to last 2 s (the test hook; this
# cluster's KillWait is 5 s), and end with exit 0. (SIGTERM to srun itself is Slurm's "forcing job
# termination": the step is killed; README.md "Faults".)
export LRKV_TEST_HOOKS=1 LRKV_CHECKPOINT_PAUSE_AT=shards_written LRKV_CHECKPOINT_PAUSE_S=2
srun -N 2 --ntasks-per-node=1 --mpi=pmix --kill-on-bad-exit=1 "$bin/lrkv" train "${train[@]}" --dp=2 --steps=100000 \
  --out_dir="$jobs/srun-term" --checkpoint_dir="$jobs/srun-term-ck" >"$jobs/srun-term.log" 2>&1 &
srun_pid=$!
for _ in $(seq 300); do grep -q "^step     3/" "$jobs/srun-term.log" 2>/dev/null && break; sleep 0.2; done
kill -USR1 $srun_pid; wait $srun_pid; status=$?
stopped="$(grep -o "stopped by SIGTERM/SIGINT/SIGUSR1 after step [0-9]*" "$jobs/srun-term.log" | grep -o "[0-9]*$")"
if [ $status -eq 0 ] && [ -n "$stopped" ] && [ "$(cat "$jobs/srun-term-ck/latest")" = "$(printf 'step_%08d' "$stopped")" ]; then
  ok "SIGUSR1 to srun: checkpoint of step $stopped written (2 s save), srun exit 0"
else
  fail "SIGUSR1 to srun: exit $status, stopped at '$stopped'"; tail -8 "$jobs/srun-term.log"
fi
id="$(LRKV_BIN="$bin/lrkv" sbatch --parsable -N 2 --ntasks-per-node=1 -o "$jobs/scancel.log" \
      "$src/launch/slurm/train.sbatch" "${train[@]}" --steps=100000 --out_dir="$jobs/scancel" --checkpoint_dir="$jobs/scancel-ck")"
for _ in $(seq 300); do grep -q "^step     3/" "$jobs/scancel.log" 2>/dev/null && break; sleep 0.2; done
scancel "$id"
for _ in $(seq 300); do
  state="$(scontrol -o show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
  case "$state" in PENDING|CONFIGURING|RUNNING|COMPLETING|"") sleep 0.2 ;; *) break ;; esac
done
sleep 1  # the batch log is written by slurmd after the step
stopped="$(grep -o "stopped by SIGTERM/SIGINT/SIGUSR1 after step [0-9]*" "$jobs/scancel.log" | grep -o "[0-9]*$")"
if [ -n "$stopped" ] && [ "$(cat "$jobs/scancel-ck/latest" 2>/dev/null)" = "$(printf 'step_%08d' "$stopped")" ] &&
   grep -q "^done: $stopped steps" "$jobs/scancel.log"; then
  ok "scancel (SIGTERM): job $id ($state) saved step $stopped and its ranks finished cleanly"
else
  fail "scancel: job $id $state, stopped at '$stopped'"; tail -8 "$jobs/scancel.log"
fi
unset LRKV_TEST_HOOKS LRKV_CHECKPOINT_PAUSE_AT LRKV_CHECKPOINT_PAUSE_S

# A rank killed mid-training: the step ends within 30 s, non-zero, and srun names the task.
"$src/tests/integration/kill_rank.sh" srun "$jobs/killed" 30 \
  srun -N 2 --ntasks-per-node=1 --mpi=pmix "$bin/lrkv" train "${train[@]}" --dp=2 --steps=100000 \
  --out_dir="$jobs/killed" || fail "rank killed under srun"

[ $failures -eq 0 ] && echo "slurm_train: all passed" || { echo "slurm_train: $failures failed"; exit 1; }
