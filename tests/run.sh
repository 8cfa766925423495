#!/usr/bin/env bash
# README's second command: installs the dependencies, builds everything and runs every test
# (unit tests, PyTorch reference comparisons, command-line and end-to-end training tests).
set -euo pipefail
cd "$(dirname "$0")/.."

launch/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
# Two tests at a time on two cores: one thread each, or OpenMP spin-waits thrash.
OMP_NUM_THREADS=1 ctest --test-dir build --output-on-failure -j2 --timeout 900
