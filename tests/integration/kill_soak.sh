#!/usr/bin/env bash
# kill -9 soak: a 2-rank tp2 training run that saves a checkpoint every step is killed KILLS times
# (default 20) with SIGKILL to a random rank at a random moment, and resumed with --resume after
# each kill. After every kill the checkpoint directory must verify (`lrkv checkpoint inspect`), and
# at the end the metrics file must hold every step exactly once with the losses of an uninterrupted
# run, bit for bit. Prints "N of N kills survived"; writes $WORK/kill-soak/result.json.
#   kill_soak.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR MPIRUN...
#   KILLS=30 STEPS=300 tests/integration/kill_soak.sh build/bin . /tmp/soak mpirun --oversubscribe
set -uo pipefail
. "$(dirname "$0")/lib.sh"
setup kill-soak "$@"
kills="${KILLS:-20}" steps="${STEPS:-200}"
export LRKV_SOAK_TAG="$$.$RANDOM"
train=("${mpirun[@]}" -np 2 -x LRKV_SOAK_TAG "$bin/lrkv" train "${small_train[@]}" --tp=2 --steps="$steps")
"${train[@]}" --out_dir="$w/reference" >"$w/reference.log" 2>&1 || { cat "$w/reference.log"; exit 1; }

ranks() {  # PIDs of this soak's lrkv ranks
  local pid
  for pid in $(pgrep -x lrkv); do
    { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | grep -qxF "LRKV_SOAK_TAG=$LRKV_SOAK_TAG" && echo "$pid"
  done
}

tried=0 survived=0 completed=0
for i in $(seq "$kills"); do
  "${train[@]}" --out_dir="$w/run" --checkpoint_dir="$w/ck" --save_every=1 --resume >"$w/run-$i.log" 2>&1 &
  job=$!
  wait_for "$w/run-$i.log" "^step " 60 || { fail "run $i never trained"; tail -5 "$w/run-$i.log"; kill -9 $job; break; }
  sleep "$(/usr/bin/python3 -c "import random; print(random.uniform(0, 1.5))")"
  mapfile -t pids < <(ranks)
  if [ "${#pids[@]}" -eq 0 ]; then wait $job; completed=1; break; fi  # finished before the kill
  victim="${pids[$((RANDOM % ${#pids[@]}))]}"
  kill -9 "$victim" 2>/dev/null
  wait $job; status=$?
  for p in $(ranks); do kill -9 "$p" 2>/dev/null; done
  if [ $status -eq 0 ]; then completed=1; break; fi  # the kill landed after the last step
  tried=$((tried + 1))
  # Whatever moment the kill hit, what `latest` names verifies (or there is no checkpoint yet).
  if [ ! -e "$w/ck/latest" ] || "$bin/lrkv" checkpoint inspect "$w/ck" >/dev/null 2>&1; then
    survived=$((survived + 1))
  else
    fail "kill $i (rank pid $victim): the checkpoint directory does not verify"; ls -la "$w/ck"
  fi
done
if [ $completed = 0 ]; then
  "${train[@]}" --out_dir="$w/run" --checkpoint_dir="$w/ck" --save_every=1 --resume >"$w/final.log" 2>&1 ||
    { fail "the final resume failed"; tail -5 "$w/final.log"; }
fi
if /usr/bin/python3 - "$w/reference/metrics.jsonl" "$w/run/metrics.jsonl" "$steps" <<'PY'
import json, sys
ref = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
steps = [r["step"] for r in got]
want = list(range(1, int(sys.argv[3]) + 1))
bad = [(a["step"], a["loss"], b["loss"]) for a, b in zip(ref, got) if a["loss"] != b["loss"]]
print(f"metrics: {len(got)} records, steps {'1..%d each once' % want[-1] if steps == want else steps[:8]}, "
      f"{len(bad)} losses differ from the uninterrupted run")
sys.exit(0 if steps == want and not bad else 1)
PY
then
  ok "after $tried kills the run completed with the uninterrupted run's losses, every step recorded once"
else
  fail "the resumed run's metrics differ from the uninterrupted run"; survived=0
fi
echo "{\"kills_tried\": $tried, \"kills_survived\": $survived, \"steps\": $steps}" >"$w/result.json"
echo "kill_soak: $survived of $tried kills survived"
[ "$survived" -eq "$tried" ] || fail "$((tried - survived)) kills not survived"
finish kill_soak
