#!/usr/bin/env bash
# README's first command: on a fresh Debian 12 machine, installs the dependencies, builds, prepares
# the Brown corpus and trains the demo LRKV model with mpirun on RANKS ranks in the layout LAYOUT
# (default: 4 ranks, tensor-parallel 2 x data-parallel 2; with another RANKS, data-parallel over
# all of them). Extra arguments go to `lrkv train`, e.g.
#   launch/quickstart.sh --steps=50 --model.lrkv_rank=4
#   LAYOUT="--pp=2 --dp=2 --micro_batches=4" launch/quickstart.sh
#   RANKS=8 LAYOUT="--dp=2 --pp=2 --tp=2 --micro_batches=4" launch/quickstart.sh
#   RANKS=2 launch/quickstart.sh --zero1     # dp2 with ZeRO-1
#   RANKS=1 launch/quickstart.sh             # one process, no mpirun
set -euo pipefail
cd "$(dirname "$0")/.."
RANKS="${RANKS:-4}"
if [ -z "${LAYOUT+set}" ]; then
  if [ "$RANKS" -eq 4 ]; then LAYOUT="--tp=2 --dp=2"; else LAYOUT="--dp=$RANKS"; fi
fi

launch/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target lrkv lrkv-prepare-data
build/bin/lrkv prepare-data --corpus=brown --out=data_out/brown

args=(--config=configs/brown-tiny-lrkv.textproto "$@")
if [ "$RANKS" -eq 1 ]; then exec build/bin/lrkv train "${args[@]}"; fi
# Through launch/mpirun.sh, so Ctrl-C or SIGTERM stops the ranks at the next step (saving a
# checkpoint with --checkpoint_dir) instead of mpirun killing them. Ranks may outnumber cores here
# (--oversubscribe), so each rank uses one thread.
# shellcheck disable=SC2086
exec launch/mpirun.sh -np "$RANKS" --threads 1 --oversubscribe --bind-to none "${args[@]}" $LAYOUT
