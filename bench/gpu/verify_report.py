#!/usr/bin/env python3
"""The GPU verification's verdict (bench/gpu/verify.sh): reads what the device steps left in OUT and
the CPU's figures the bundle carried, writes OUT/summary.json and prints a table.

  verify_report.py OUT REFERENCE_DIR [DEVICE]

DEVICE (cuda) is what the steps trained on; `verify.sh sandbox` passes emulated.
Checks (each passed or not): the op test has no failure and ran its cases of DEVICE; every variant's
20 GPU steps follow the CPU's losses (FP32 within 1e-4 relative at every step, BF16 within 2%); the
safetensors export read by the `safetensors` package gives the PyTorch reference's logits.
Goals (met or not, with the figures): MFU >= 45% at the 1.3B shape for MHA and LRKV; LRKV's step
time at most 1.05x MHA's; lrkv's tokens/s at least PyTorch's best (eager or compiled).
Standard library only: it runs under whatever Python the GPU machine has.
"""
import json
import statistics
import sys
from pathlib import Path

VARIANTS = ["mha", "gqa", "mqa", "mla", "lrkv", "mlra"]
TOLERANCE = {"FP32": 1e-4, "BF16": 2e-2}
PEAK = 989e12  # H100/H200 SXM bf16 dense


def rows(path):
    """The JSON lines of a file; a line cut short (a step killed mid-write) is left out."""
    path = Path(path)
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def finite(*values):
    return all(isinstance(v, (int, float)) and v == v and abs(v) != float("inf") for v in values)


def guarded(section, *args):
    """A section's result, or what went wrong in it: one bad figure must not lose the summary."""
    try:
        return section(*args)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        return {"passed": False, "why": f"{section.__name__} failed: {type(e).__name__}: {e}"}


def load(path):
    path = Path(path)
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except json.JSONDecodeError:
        return None


def op_test(out, device):
    report = load(out / "backend_ops_test.json")
    if report is None:
        return {"passed": False, "why": "no backend_ops_test.json (the test did not finish)"}
    cases = [t for suite in report.get("testsuites", []) for t in suite.get("testsuite", [])]
    failed = [t["name"] for t in cases if t.get("failures")]
    skipped = [t["name"] for t in cases if t.get("result") == "SKIPPED"]
    ran = [t["name"] for t in cases if t["name"].endswith((f"{device}_f32", f"{device}_bf16")) and
           t["name"] not in skipped]
    return {"passed": not failed and bool(ran), "cases": len(cases), "failed": failed, "skipped": len(skipped),
            f"{device}_cases_run": len(ran)}


def training(out, reference):
    result = {}
    for v in VARIANTS:
        for p, tol in TOLERANCE.items():
            got = {r["step"]: r for r in rows(out / "train" / f"{v}-{p}" / "metrics.jsonl")}
            want = {r["step"]: r for r in rows(reference / f"{v}-{p}.metrics.jsonl")}
            if not got or set(got) != set(want):
                result[f"{v}-{p}"] = {"passed": False, "why": f"steps {sorted(got)} against the CPU's {sorted(want)}"}
                continue
            if not all(finite(got[s].get("loss")) for s in got):
                result[f"{v}-{p}"] = {"passed": False, "why": "non-finite losses on the device"}
                continue
            worst = max(abs(got[s]["loss"] - want[s]["loss"]) / abs(want[s]["loss"]) for s in want)
            result[f"{v}-{p}"] = {"passed": worst <= tol, "max_rel_loss_diff": worst, "tolerance": tol,
                                  "final_loss": got[max(got)]["loss"], "cpu_final_loss": want[max(want)]["loss"],
                                  "step_time_s": statistics.median(got[s]["step_time_s"] for s in got)}
    return result


def measured_gemm_tflops(out):
    rates = [r["tflops"] for r in rows(out / "gpu_op_bench.jsonl") if r.get("op") == "gemm" and r.get("dtype") == "bf16"]
    return max(rates) if rates else None


def mfu(out, gemm_tflops):
    result = {}
    for v in ("mha", "lrkv"):
        steps = rows(out / "mfu" / v / "metrics.jsonl")
        timed = steps[3:] or steps[1:] or steps  # the first steps build plans and fill caches
        timed = [s for s in timed if finite(s.get("step_time_s"), s.get("mfu"), s.get("tokens_per_s"))]
        if not timed:
            result[v] = {"why": "no metrics (see mfu_%s.log)" % v}
            continue
        r = {"steps_timed": len(timed),
             "step_time_s": statistics.median(s["step_time_s"] for s in timed),
             "tokens_per_s": statistics.median(s["tokens_per_s"] for s in timed),
             "mfu": statistics.median(s["mfu"] for s in timed),
             "hfu": statistics.median(s["hfu"] for s in timed),
             "flops_per_s": statistics.median(s["flops_per_s"] for s in timed),
             "memory_peak_allocated_bytes": max(s["memory_peak_allocated_bytes"] for s in steps),
             "memory_peak_reserved_bytes": max(s["memory_peak_reserved_bytes"] for s in steps)}
        if gemm_tflops:
            r["mfu_vs_measured_gemm"] = r["flops_per_s"] / (gemm_tflops * 1e12)
        r["goal_mfu_45"] = r["mfu"] >= 0.45
        result[v] = r
    if "step_time_s" in result.get("mha", {}) and "step_time_s" in result.get("lrkv", {}):
        ratio = result["lrkv"]["step_time_s"] / result["mha"]["step_time_s"]
        result["lrkv_over_mha_step_time"] = ratio
        result["goal_lrkv_within_1.05x"] = ratio <= 1.05
    return result


def torch_side(out, lrkv):
    result = {}
    for v in ("mha", "lrkv"):
        runs = {kind: load(out / f"torch{kind}_{v}.json") for kind in ("", "_compiled")}
        runs = {("eager" if k == "" else "compiled"): r for k, r in runs.items() if r}
        if not runs:
            result[v] = {"why": "no PyTorch figures (see torch_%s.log)" % v}
            continue
        best = max(runs.values(), key=lambda r: r["tokens_per_s"])
        entry = {kind: {"tokens_per_s": r["tokens_per_s"], "mfu": r.get("mfu"), "compiled": r.get("compiled"),
                        "micro_batch": r.get("micro_batch"), "peak_memory_bytes": r.get("peak_memory_bytes")}
                 for kind, r in runs.items()}
        entry["torch_version"] = best.get("torch_version")
        ours = lrkv.get(v, {}).get("tokens_per_s")
        if ours:
            entry["lrkv_over_torch_tokens_per_s"] = ours / best["tokens_per_s"]
            entry["goal_at_least_torch"] = ours >= best["tokens_per_s"]
        result[v] = entry
    return result


def safetensors_check(out):
    log = out / "safetensors.log"
    text = log.read_text() if log.exists() else ""
    return {"passed": text.startswith("ok"), "output": text.strip()[-400:]}


def device_name(out):
    smi = out / "nvidia_smi.log"
    for line in (smi.read_text().splitlines() if smi.exists() else []):
        if "NVIDIA" in line and ("H100" in line or "H200" in line or "A100" in line or "GH200" in line):
            return " ".join(line.strip("| ").split()[:5])
    for v in ("mha", "lrkv"):
        r = load(out / f"torch_{v}.json")
        if r and r.get("device_name"):
            return r["device_name"]
    return "unknown"


def main():
    out, reference = Path(sys.argv[1]), Path(sys.argv[2])
    device = sys.argv[3] if len(sys.argv) > 3 else "cuda"
    gemm = measured_gemm_tflops(out)
    s = {"device": device_name(out), "steps": rows(out / "steps.jsonl"), "trained_on": device, "op_test": guarded(op_test, out, device),
         "training": guarded(training, out, reference), "measured_bf16_gemm_tflops": gemm}
    s["mfu_1.3b"] = guarded(mfu, out, gemm)
    s["pytorch_1.3b"] = guarded(torch_side, out, s["mfu_1.3b"])
    s["safetensors"] = guarded(safetensors_check, out)
    runs = s["training"].values() if "why" not in s["training"] else [s["training"]]
    checks = [s["op_test"]["passed"], s["safetensors"]["passed"]] + [t["passed"] for t in runs]
    s["all_checks_passed"] = all(checks)
    (out / "summary.json").write_text(json.dumps(s, indent=1) + "\n")

    print(f"device: {s['device']}")
    t = s["op_test"]
    print(f"op test: {'ok' if t['passed'] else 'FAIL'} {t.get('cases', 0)} cases, {len(t.get('failed', []))} failed, "
          f"{t.get(device + '_cases_run', 0)} {device} cases run {t.get('why', '')}")
    for name, r in (s["training"].items() if "why" not in s["training"] else [("all", s["training"])]):
        print(f"train {name:10s}: {'ok' if r['passed'] else 'FAIL'} " +
              (f"max rel loss diff {r['max_rel_loss_diff']:.2e} (tol {r['tolerance']:g})" if "max_rel_loss_diff" in r
               else r["why"]))
    for v in ("mha", "lrkv"):
        r = s["mfu_1.3b"].get(v, {})
        if "mfu" in r:
            print(f"1.3B {v:4s}: MFU {100 * r['mfu']:.1f}% of 989 TFLOP/s"
                  + (f", {100 * r['mfu_vs_measured_gemm']:.1f}% of the measured GEMM" if "mfu_vs_measured_gemm" in r else "")
                  + f", {r['tokens_per_s']:.0f} tok/s, {r['step_time_s']:.3f} s/step")
        else:
            print(f"1.3B {v:4s}: {r.get('why')}")
        p = s["pytorch_1.3b"].get(v, {})
        for kind in ("eager", "compiled"):
            if kind in p:
                print(f"  PyTorch {kind}: {p[kind]['tokens_per_s']:.0f} tok/s")
    if "lrkv_over_mha_step_time" in s["mfu_1.3b"]:
        print(f"LRKV / MHA step time: {s['mfu_1.3b']['lrkv_over_mha_step_time']:.3f} (goal <= 1.05)")
    print(f"safetensors: {'ok' if s['safetensors']['passed'] else 'FAIL'}")
    print(f"all checks {'passed' if s['all_checks_passed'] else 'NOT passed'}; summary -> {out / 'summary.json'}")
    return 0 if s["all_checks_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
