#!/usr/bin/env bash
# README's first command: on a fresh Debian 12 machine, installs the dependencies, builds, prepares
# the Brown corpus and trains the demo LRKV model. Extra arguments go to `lrkv train`, e.g.
#   launch/quickstart.sh --steps=50 --model.lrkv_rank=4
set -euo pipefail
cd "$(dirname "$0")/.."

launch/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target lrkv lrkv-prepare-data
build/bin/lrkv prepare-data --corpus=brown --out=data_out/brown
exec build/bin/lrkv train --config=configs/brown-tiny-lrkv.textproto "$@"
