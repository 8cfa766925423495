#!/usr/bin/env bash
# A layout that cannot work fails before training, on every rank, with the same clear message,
# and the job exits non-zero.
#   bad_layouts.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR MPIRUN...
set -uo pipefail
bin="$1"; src="$2"; work="$3"; shift 3
mpirun=("$@")
failures=0
expect() {  # expect NP MESSAGE FLAGS...
  local np="$1" message="$2"; shift 2
  local out status
  out="$("${mpirun[@]}" -np "$np" "$bin/lrkv" train --config="$src/configs/brown-tiny-lrkv.textproto" \
        --data_dir="$work/brown" --model.vocab_size=2048 "$@" 2>&1)"; status=$?
  local ranks; ranks=$(grep -cF -- "$message" <<<"$out")
  if [ $status -eq 0 ] || [ "$ranks" -lt 1 ]; then
    echo "FAIL ($*): exit $status; expected '$message' in:"; echo "$out" | tail -5; failures=$((failures + 1))
  else
    echo "ok ($*): exit $status, $ranks rank(s): $(grep -F -- "$message" <<<"$out" | head -1)"
  fi
}
expect 4 "layout dp3 x pp1 x tp1 needs 3 ranks but the job has 4" --dp=3
expect 8 "layout dp1 x pp1 x tp3 needs 3 ranks but the job has 8" --tp=3
expect 3 "parallel.tp (3) does not divide model.n_heads (4)" --tp=3
expect 5 "parallel.pp (5) is more pipeline stages than model.n_layers (4)" --pp=5
expect 2 "parallel.tp (2) does not divide model.d_ff (511)" --tp=2 --model.d_ff=511
expect 2 "train.global_batch (12) must be a multiple of parallel.dp (2) x train.micro_batch (4)" --dp=2 \
  --train.global_batch=12 --train.micro_batch=4
[ $failures -eq 0 ]
