#!/usr/bin/env bash
# One PyTorch comparison: dump the C++ model's outputs for a config, then check them in PyTorch.
#   run_case.sh DUMP_CASE_BINARY CONFIG WORK_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
case_dir="$3/$(basename "$2" .textproto)"
rm -rf "$case_dir"
"$1" --config="$2" --out="$case_dir"
# Debian's interpreter: it is the one with python3-torch.
/usr/bin/python3 "$here/compare_case.py" "$case_dir" --tol 1e-4
