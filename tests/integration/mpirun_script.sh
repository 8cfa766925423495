#!/usr/bin/env bash
# launch/mpirun.sh on this machine: with -np, and with a hostfile (localhost slots=2); each run trains
# 3 steps data-parallel on 2 ranks (the script adds --dp=2) and prints the job's shape once.
#   mpirun_script.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR
set -uo pipefail
bin="$1"; src="$2"; work="$3"
. "$src/tests/integration/lib.sh"
prepare_brown
export LRKV_BIN="$bin/lrkv"
run() {  # run NAME MPIRUN_SH_ARGS...
  local name="$1" out="$work/mpirun_script/$1"; shift
  rm -rf "$out"; mkdir -p "$out"
  timeout 120 "$src/launch/mpirun.sh" "$@" --config="$src/configs/brown-tiny-lrkv.textproto" --data_dir="$data" \
    --model.vocab_size=2048 --model.n_layers=2 --model.seq_len=32 --steps=3 --train.eval_every=3 \
    --train.eval_batches=1 --train.peak_flops=1e11 --out_dir="$out" > "$out.log" 2>&1; local status=$?
  local rows; rows="$(wc -l < "$out/metrics.jsonl" 2>/dev/null || echo 0)"
  if [ $status -ne 0 ] || [ "$rows" != 3 ] ||
     [ "$(grep -cF 'launch: 2 ranks on 1 node (2 per node), started by mpirun' "$out.log")" != 1 ] ||
     ! grep -qE '^  node 0 .*: ranks 0-1$' "$out.log" || ! grep -qF -- '--dp=2' "$out.log"; then
    echo "FAIL $name: exit $status, $rows metrics rows"; tail -20 "$out.log"; failures=$((failures + 1))
  else
    echo "ok $name: $(head -1 "$out.log")"
  fi
}
run np -np 2
printf '# one host, two slots\nlocalhost slots=2\n' > "$work/mpirun_script.hosts"
run hostfile --hostfile "$work/mpirun_script.hosts" --threads 1
[ $failures -eq 0 ] && echo "mpirun_script: all passed" || { echo "mpirun_script: $failures failed"; exit 1; }
