#!/usr/bin/env bash
# Builds train_step_bench if needed and runs it on all cores; extra arguments go to the bench, e.g.
#   bench/run.sh --variants=mha,lrkv --steps=9
# Writes bench/results/train_step_cpu.json and prints the Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"

if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" -j"$(nproc)" --target train_step_bench

# Concurrent work on the same cores makes the numbers meaningless: say so rather than guess.
if pgrep -f "lrkv train" >/dev/null; then
  echo "warning: an 'lrkv train' process is running; timings will be low" >&2
fi

# All cores: OpenBLAS (OpenMP build) and our kernels then use every core of the machine.
unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS
exec "$BUILD_DIR/bin/train_step_bench" "$@"
