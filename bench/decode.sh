#!/bin/bash
# Decode benchmark: builds decode_bench if needed, runs it on every core, writes
# $OUT.json (default bench/results/decode_cpu), its Markdown table ($OUT.md) and plot ($OUT.png).
# Extra arguments go to decode_bench (e.g. --contexts=512,2048 --batches=1), e.g. the configs
# without QK-norm, where MLA decodes with its up-projections absorbed:
#   OUT=bench/results/decode_cpu_no_qk_norm bench/decode.sh --set=model.qk_norm=false --batches=1
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/bin/decode_bench ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target decode_bench; }
if pgrep -f "lrkv train" >/dev/null; then echo "warning: an lrkv train is running; the timings will be off" >&2; fi
unset OMP_NUM_THREADS
out="${OUT:-bench/results/decode_cpu}"
build/bin/decode_bench --source_dir=. --out="$out.json" "$@" | tee "$out.md"
/usr/bin/python3 bench/plot_decode.py "$out.json" "$out.png"
echo "plot -> $out.png" >&2
