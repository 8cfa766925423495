#!/usr/bin/env bash
# Fault test: starts a multi-rank training command, waits for its first step, kills rank 1 with
# SIGKILL (as the OOM killer or a dying node would) and checks that the whole job ends within LIMIT
# seconds with a non-zero status, that no rank is left running, and that the output names rank 1.
#   kill_rank.sh mpirun|srun LOG_PREFIX LIMIT COMMAND...
# COMMAND must print a line starting with "step" per step (--train.log_every=1).
set -uo pipefail
mode="$1"; prefix="$2"; limit="$3"; shift 3
case "$mode" in
  mpirun) rank_var=OMPI_COMM_WORLD_RANK; names='process rank 1 ' ;;  # "mpirun noticed that process rank 1 ..."
  srun) rank_var=SLURM_PROCID; names='task 1: ' ;;                    # "srun: error: node2: task 1: Killed"
  *) echo "kill_rank: mode must be mpirun or srun"; exit 2 ;;
esac
log="$prefix.log"
mkdir -p "$(dirname "$log")"
# The tag tells this job's ranks apart from every other lrkv on the machine (tests run in parallel).
export LRKV_KILL_RANK_TAG="$$.$RANDOM"
"$@" > "$log" 2>&1 &
launcher=$!

ranks() {  # PIDs of this job's lrkv processes (RANK: only that rank)
  local pid vars
  for pid in $(pgrep -x lrkv); do
    vars="$( { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null)"
    grep -qxF "LRKV_KILL_RANK_TAG=$LRKV_KILL_RANK_TAG" <<<"$vars" || continue
    [ -z "${1:-}" ] || grep -qxF "$rank_var=$1" <<<"$vars" || continue
    echo "$pid"
  done
}
cleanup() { kill "$launcher" 2>/dev/null; local p; for p in $(ranks); do kill -9 "$p" 2>/dev/null; done; }

deadline=$((SECONDS + 60))
until grep -q '^step ' "$log"; do
  if ! kill -0 "$launcher" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    echo "kill_rank ($mode): no step line within 60 s"; tail -20 "$log"; cleanup; exit 1
  fi
  sleep 0.1
done
victim="$(ranks 1 | head -1)"
[ -n "$victim" ] || { echo "kill_rank ($mode): rank 1 not found"; cleanup; exit 1; }
kill -9 "$victim"
killed_at=$(date +%s%N)

deadline=$((SECONDS + limit))
while kill -0 "$launcher" 2>/dev/null || [ -n "$(ranks)" ]; do
  if [ $SECONDS -ge $deadline ]; then
    echo "FAIL kill_rank ($mode): job still running $limit s after rank 1 (PID $victim) was killed:"
    ps -o pid,stat,etime,args -p "$launcher" $(ranks) 2>/dev/null; tail -20 "$log"; cleanup; exit 1
  fi
  sleep 0.1
done
wait "$launcher"; status=$?
ms=$((($(date +%s%N) - killed_at) / 1000000))
if [ $status -eq 0 ]; then echo "FAIL kill_rank ($mode): job exited 0 after losing rank 1"; tail -20 "$log"; exit 1; fi
if ! grep -qF "$names" "$log"; then
  echo "FAIL kill_rank ($mode): output does not name rank 1 ('$names'):"; tail -20 "$log"; exit 1
fi
echo "ok kill_rank ($mode): rank 1 (PID $victim) killed after step $(grep -c '^step ' "$log");" \
     "job ended with exit $status after $ms ms: $(grep -F "$names" "$log" | head -1)"
