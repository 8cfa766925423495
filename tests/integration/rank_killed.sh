#!/usr/bin/env bash
# A rank killed mid-training under mpirun (3 data-parallel ranks): the job must end within 30 s,
# non-zero, naming rank 1 (kill_rank.sh does the killing and the checks).
#   rank_killed.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR MPIRUN...
set -uo pipefail
bin="$1"; src="$2"; work="$3"; shift 3
. "$src/tests/integration/lib.sh"
prepare_brown
exec "$src/tests/integration/kill_rank.sh" mpirun "$work/rank_killed" 30 \
  "$@" -np 3 "$bin/lrkv" train --config="$src/configs/brown-tiny-lrkv.textproto" --data_dir="$data" \
  --model.vocab_size=2048 --model.n_layers=2 --model.seq_len=32 --dp=3 --train.global_batch=12 --steps=100000 \
  --train.log_every=1 --train.eval_every=100000 --train.peak_flops=1e11 --out_dir="$work/rank_killed"
