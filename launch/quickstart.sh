#!/usr/bin/env bash
# README's first command: on a fresh Debian 12 machine, installs the dependencies, builds, prepares
# the Brown corpus and trains the demo LRKV model with mpirun on RANKS ranks (default 4,
# data-parallel). Extra arguments go to `lrkv train`, e.g.
#   launch/quickstart.sh --steps=50 --model.lrkv_rank=4
#   RANKS=2 launch/quickstart.sh --zero1
#   RANKS=1 launch/quickstart.sh            # one process, no mpirun
set -euo pipefail
cd "$(dirname "$0")/.."
RANKS="${RANKS:-4}"

launch/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target lrkv lrkv-prepare-data
build/bin/lrkv prepare-data --corpus=brown --out=data_out/brown

train=(build/bin/lrkv train --config=configs/brown-tiny-lrkv.textproto "$@")
if [ "$RANKS" -eq 1 ]; then exec "${train[@]}"; fi
# Open MPI refuses to run as root unless told; ranks may outnumber cores here (--oversubscribe),
# so each rank uses one thread.
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec mpirun -np "$RANKS" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "${train[@]}" --dp="$RANKS"
