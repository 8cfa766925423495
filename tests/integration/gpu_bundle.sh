#!/bin/bash
# The GPU verification's bundle and script (bench/gpu/verify.sh), kept working without a GPU: the
# bundle made from this build's binaries, then `verify.sh sandbox`, which runs every device step in
# a mount namespace where this machine's MPI, protobuf, Abseil, OpenBLAS and sentencepiece
# libraries and Open MPI's components are hidden, on the emulated device at small shapes. Checks:
#  - the packed bundle fits the device tool's 64 MiB carry limit;
#  - the binaries resolve MPI, protobuf, Abseil and OpenBLAS from the bundle (Open MPI as a
#    singleton from the bundle's components: no mpirun, no daemon);
#  - what comes back is what the device tool returns: summary.json, report.txt, steps.jsonl and
#    verify.tar.gz (everything), and `collect` unpacks it;
#  - every step ran and bench/gpu/verify_report.py passed all its checks: the op test's emulated
#    cases, all six variants' 20 steps in FP32 and BF16 against the CPU's, the safetensors export
#    against the PyTorch reference; the 1.3B-config runs and the PyTorch baseline left figures.
# Needs root (a mount namespace). usage: gpu_bundle.sh BIN SRC WORK
. "$(dirname "$0")/lib.sh"
setup gpu_bundle "$@"
mkdir -p "$w/build"
ln -s "$(cd "$bin" && pwd)" "$w/build/bin"
export BUILD=$w/build VERIFY_REUSE_BUILD=1 VERIFY_DATA=$data OMP_NUM_THREADS=1
"$src/bench/gpu/verify.sh" prepare >"$w/prepare.log" 2>&1 || { fail "prepare"; tail -5 "$w/prepare.log"; finish gpu_bundle; }
bytes=$(stat -c %s "$w/build/carry/bundle.tar.xz")
((bytes <= 64 * 1024 * 1024)) && ok "packed bundle $((bytes / 1024 / 1024)) MiB (<= 64)" || fail "packed bundle $bytes bytes"
OUT=$w/out VERIFY_WORK=$w/work "$src/bench/gpu/verify.sh" sandbox >"$w/sandbox.log" 2>&1
tail -4 "$w/sandbox.log"
for lib in libmpi.so.40 libprotobuf.so libabsl_base.so libopenblas.so.0; do
  grep -q "$lib[^ ]* => $w/build/bundle/lib/" "$w/work/ldd.log" && ok "$lib from the bundle" || fail "$lib not from the bundle"
done
ls "$w/out" | tr '\n' ' ' | grep -q "^report.txt steps.jsonl summary.json verify.tar.gz $" && ok "OUT holds the four files" \
  || { fail "OUT holds: $(ls "$w/out" | tr '\n' ' ')"; }
tar -tzf "$w/out/verify.tar.gz" | grep -q "mfu/lrkv/metrics.jsonl" && ok "verify.tar.gz holds the runs" || fail "verify.tar.gz"
/usr/bin/python3 - "$w/out/summary.json" <<'PY' && ok "sandbox verification: every check passed" || fail "sandbox verification"
import json, sys
s = json.load(open(sys.argv[1]))
bad = []
if s["trained_on"] != "emulated" or not s["all_checks_passed"]:
    bad.append(f"trained_on {s['trained_on']}, all_checks_passed {s['all_checks_passed']}")
if len(s["training"]) != 12 or not all(t["passed"] for t in s["training"].values()):
    bad.append(f"training {s['training']}")
if s["op_test"].get("emulated_cases_run", 0) < 20:
    bad.append(f"op test {s['op_test']}")
for v in ("mha", "lrkv"):
    if "mfu" not in s["mfu_1.3b"].get(v, {}) or "eager" not in s["pytorch_1.3b"].get(v, {}):
        bad.append(f"{v}: no 1.3B-config or PyTorch figures")
skipped = [st["step"] for st in s["steps"] if "skipped" in st]
if skipped:
    bad.append(f"steps skipped by the deadline: {skipped}")
print("\n".join(bad) if bad else f"{len(s['steps'])} steps, {len(s['training'])} training checks")
sys.exit(1 if bad else 0)
PY
finish gpu_bundle
