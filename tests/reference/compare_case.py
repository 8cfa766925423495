#!/usr/bin/env python3
"""Check a C++ dump (CASE_DIR) against the float64 torch reference.

  python3 compare_case.py CASE_DIR [--tol 1e-4]

Recomputes logits, mean cross-entropy loss and every parameter gradient in
float64 from CASE_DIR/params, then compares with CASE_DIR/{logits,loss}.npy and
CASE_DIR/grads/*.npy. rel err = max|cpp - ref| / max(max|ref|, 1e-30).
Exit 0 iff every file is present with the right shape, no extra files, and
every rel err <= tol (non-finite C++ values count as infinite error).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_reference import forward, param_shapes  # noqa: E402


def rel_err(cpp, ref):
    cpp, ref = np.asarray(cpp, np.float64), np.asarray(ref, np.float64)
    if ref.size == 0:
        return 0.0
    if not np.all(np.isfinite(cpp)):
        return float("inf")
    return float(np.max(np.abs(cpp - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def npy_names(folder):
    return {p.name[:-4] for p in folder.glob("*.npy")} if folder.is_dir() else set()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case_dir")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    case = Path(args.case_dir)
    cfg = json.loads((case / "config.json").read_text())
    shapes = param_shapes(cfg)
    problems = []  # structural failures (missing / extra / wrong shape)

    # Every expected file present with the expected shape, and nothing else:
    # an extra file means the C++ side has a parameter the equations do not.
    for sub in ("params", "grads"):
        extra = npy_names(case / sub) - set(shapes)
        problems += [f"unexpected file {sub}/{n}.npy" for n in sorted(extra)]
    params = {}
    for name, shp in shapes.items():
        f = case / "params" / f"{name}.npy"
        if not f.exists():
            problems.append(f"missing params/{name}.npy")
            continue
        a = np.load(f)
        if tuple(a.shape) != tuple(shp):
            problems.append(f"params/{name}.npy shape {tuple(a.shape)} != expected {tuple(shp)}")
            continue
        params[name] = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    if len(params) != len(shapes):  # cannot run the reference without all params
        for p in problems:
            print("FAIL", p)
        print(f"SUMMARY: FAIL ({len(problems)} structural problems, reference not run)")
        return 1

    tokens, targets = np.load(case / "tokens.npy"), np.load(case / "targets.npy")
    if tokens.ndim != 2 or tokens.shape != targets.shape:
        print(f"FAIL tokens {tokens.shape} / targets {targets.shape} must be equal (B, T)")
        return 1
    logits, loss = forward(cfg, params, tokens, targets)
    loss.backward()

    rows = []  # (name, cpp array or None, ref array)
    B, T = tokens.shape
    V = cfg["vocab_size"]
    rows.append(("logits", case / "logits.npy", logits.detach().numpy(), (B, T, V)))
    rows.append(("loss", case / "loss.npy", loss.detach().numpy(), ()))
    for name in shapes:
        g = params[name].grad
        g = torch.zeros_like(params[name]) if g is None else g
        rows.append((f"grad {name}", case / "grads" / f"{name}.npy", g.numpy(), shapes[name]))

    worst, worst_name, failed = 0.0, "-", 0
    for name, path, ref, shp in rows:
        if not path.exists():
            problems.append(f"missing {path.relative_to(case)}")
            continue
        cpp = np.load(path)
        # loss: accept a 1-element array as well as a 0-d one
        if tuple(cpp.shape) != tuple(shp) and not (name == "loss" and cpp.size == 1):
            problems.append(f"{path.relative_to(case)} shape {tuple(cpp.shape)} != expected {tuple(shp)}")
            continue
        e = rel_err(cpp.reshape(ref.shape), ref)
        bad = not (e <= args.tol)
        failed += bad
        if e > worst or worst_name == "-":
            worst, worst_name = e, name
        print(f"{'FAIL' if bad else 'ok  '} {name:<44s} rel_err={e:.3e}")

    for p in problems:
        print("FAIL", p)
    nfail = failed + len(problems)
    print(f"SUMMARY: {'PASS' if nfail == 0 else 'FAIL'}  tensors={len(rows)} tol={args.tol:g} "
          f"worst={worst:.3e} ({worst_name}) failed={failed} structural_problems={len(problems)} "
          f"loss_ref={loss.item():.10g}")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
