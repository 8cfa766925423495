#!/bin/bash
# Decode benchmark: builds decode_bench if needed, runs it on every core, writes
# bench/results/decode_cpu.json, its Markdown table (decode_cpu.md) and plot (decode_cpu.png).
# Extra arguments go to decode_bench (e.g. --contexts=512,2048 --batches=1).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/bin/decode_bench ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target decode_bench; }
if pgrep -f "lrkv train" >/dev/null; then echo "warning: an lrkv train is running; the timings will be off" >&2; fi
unset OMP_NUM_THREADS
build/bin/decode_bench --source_dir=. --out=bench/results/decode_cpu.json "$@" | tee bench/results/decode_cpu.md
/usr/bin/python3 bench/plot_decode.py bench/results/decode_cpu.json bench/results/decode_cpu.png
echo "plot -> bench/results/decode_cpu.png" >&2
