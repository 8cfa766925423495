#!/usr/bin/env bash
# The start-up launch check on one process that the environment says is one of several (what a
# binary linked against another MPI than its mpirun, or srun without PMIx on an MPI that then falls
# back to a world of one, looks like from inside): refused at once, with one message naming both
# numbers and the fix, and a non-zero exit. tests/slurm/slurm_train.sh does it on a real cluster.
# Then a binary built for a CPU with more than this one has.
#   world_mismatch.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR MPIRUN...
set -uo pipefail
bin="$1"; src="$2"; work="$3"; shift 3; mpirun=("$@")
. "$src/tests/integration/lib.sh"
prepare_brown
expect() {  # expect MESSAGE FIX ENV...
  local message="$1" fix="$2"; shift 2
  local out status t0=$SECONDS
  out="$(timeout 30 env "$@" "$bin/lrkv" train --config="$src/configs/brown-tiny-lrkv.textproto" \
         --data_dir="$data" --model.vocab_size=2048 --steps=2 --out_dir="$work/world_mismatch" 2>&1)"; status=$?
  if [ $status -eq 0 ] || [ $status -eq 124 ] || ! grep -qF -- "$message" <<<"$out" || ! grep -qF -- "$fix" <<<"$out"; then
    echo "FAIL ($*): exit $status; expected '$message' and '$fix' in:"; echo "$out" | tail -5; failures=$((failures + 1))
  elif grep -q '^step ' <<<"$out"; then
    echo "FAIL ($*): refused, but only after training started"; failures=$((failures + 1))
  else
    echo "ok ($*): exit $status in $((SECONDS - t0)) s: $(grep -F -- "$message" <<<"$out" | head -1)"
  fi
}
expect "launch check: MPI world has 1 rank but mpirun started 2 (OMPI_COMM_WORLD_SIZE=2)" "mpirun --version" \
  OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_LOCAL_RANK=1
expect "launch check: MPI world has 1 rank but srun started 4 (SLURM_STEP_NUM_TASKS=4)" "srun --mpi=pmix" \
  SLURM_JOB_ID=77 SLURM_STEP_ID=0 SLURM_NTASKS=4 SLURM_STEP_NUM_TASKS=4 SLURM_PROCID=3 SLURM_LOCALID=1
expect "launch check: MPI world has 1 rank but the Slurm allocation has 2 tasks (SLURM_NTASKS=2)" "not by srun or mpirun" \
  SLURM_JOB_ID=77 SLURM_NTASKS=2 SLURM_PROCID=0
# A binary built for a CPU with more than this one has (a test hook hides the build's features):
# refused before MPI starts, naming what is missing and the rebuild, on one process and under mpirun.
if [ "$(uname -m)" = x86_64 ]; then
  expect "but $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" \
    "lacks sse2: rebuild on this machine, or for every machine of the job with cmake -DLRKV_MARCH=" \
    LRKV_TEST_HOOKS=1 LRKV_TEST_CPU_LACKS=sse2
  out="$(LRKV_TEST_HOOKS=1 LRKV_TEST_CPU_LACKS=all timeout 60 "${mpirun[@]}" -np 2 "$bin/lrkv" train \
         --config="$src/configs/brown-tiny-lrkv.textproto" --data_dir="$data" --dp=2 --steps=2 \
         --out_dir="$work/cpu_lacks" 2>&1)"; status=$?
  if [ $status -ne 0 ] && [ $status -ne 124 ] && [ "$(grep -c "lrkv: error: this build of lrkv was compiled for" <<<"$out")" -eq 2 ]; then
    echo "ok (mpirun -np 2, no CPU feature): both ranks refused, exit $status"
  else
    echo "FAIL (mpirun -np 2, no CPU feature): exit $status"; echo "$out" | tail -5; failures=$((failures + 1))
  fi
fi
[ $failures -eq 0 ] && echo "world_mismatch: all passed" || { echo "world_mismatch: $failures failed"; exit 1; }
