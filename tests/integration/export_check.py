#!/usr/bin/env python3
"""Checks for tests/integration/export_import.sh, on the files of `lrkv export`.

Reads safetensors with its own reader (json + numpy only, independent of lrkv's C++ reader):
  export_check.py logits FILE.safetensors CASE_DIR [--tol 1e-4] [--library]
      FILE's tensors are exactly the parameters the torch reference expects for the model of
      FILE.config.json; the reference's float64 logits for CASE_DIR/tokens.npy with those
      parameters match CASE_DIR/logits.npy (dump_case --params=FILE). --library reads FILE with
      the `safetensors` package instead (bench/gpu/verify.sh, where it is installed).
  export_check.py params FILE.safetensors DIR
      FILE's tensors equal DIR/NAME.npy bit for bit (what `lrkv train --train.save_params_dir=DIR`
      wrote at the end of the run the checkpoint came from).
  export_check.py same A.safetensors B.safetensors
      the same tensors (names, dtypes, shapes, bytes).
  export_check.py damage FILE.safetensors OUT.safetensors shape|dtype|extra
      writes a copy with a wrong shape (layers.0.attn.wq loses 8 columns), a wrong dtype (F64
      throughout) or an extra tensor; the copy is written by this file's own writer.
  export_check.py val_loss SUMMARY_A.json SUMMARY_B.json [--tol 1e-6]
      equal final validation losses (relative difference at most tol).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reference"))
from torch_reference import forward, param_shapes  # noqa: E402

DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "F16": "<f2", "U8": "u1"}


def read_safetensors(path):
    """-> ({name: (dtype, ndarray)}, metadata); checks the layout the format prescribes."""
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert 8 + n <= len(data), f"{path}: header of {n} bytes, file of {len(data)}"
    assert n % 8 == 0, f"{path}: header length {n} is not a multiple of 8 (data unaligned)"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in meta.values()), meta
    out, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, en = e["data_offsets"]
        assert b == end, f"{name}: starts at {b}, previous tensor ends at {end}"
        dt = np.dtype(DTYPES[e["dtype"]])
        count = int(np.prod(e["shape"], dtype=np.int64))
        assert en - b == count * dt.itemsize, f"{name}: {en - b} bytes for {e['shape']} {e['dtype']}"
        out[name] = (e["dtype"], np.frombuffer(data, dtype=dt, count=count, offset=8 + n + b).reshape(e["shape"]))
        end = en
    assert 8 + n + end == len(data), f"{path}: {len(data) - 8 - n - end} trailing bytes"
    return out, meta


def write_safetensors(path, tensors, meta):
    """tensors: {name: (dtype, ndarray)} in order."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, (dtype, a) in tensors.items():
        b = np.ascontiguousarray(a, dtype=np.dtype(DTYPES[dtype])).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def reference_config(path):
    """The torch reference's config dict from FILE.config.json (the ModelConfig message as JSON)."""
    m = json.loads(Path(path).read_text())
    cfg = dict(m)  # every field, the variants' own (kv_heads, lrkv_rank, mla, ...) as they are
    cfg.update(
        d_head=m["d_model"] // m["n_heads"], attention=m["attention"].lower(),
        activation={"GELU": "gelu", "RELU_SQUARED": "relu2", "SWIGLU": "swiglu"}[m["activation"]],
        norm=m["norm"].lower(), dtype="f32")
    return cfg


def rel_err(a, ref):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    if not np.all(np.isfinite(a)):
        return float("inf")
    return float(np.max(np.abs(a - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def read_with_library(path):
    """read_safetensors's result, read by the `safetensors` package (Hugging Face's reader)."""
    from safetensors import safe_open
    names = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i4"): "I32"}
    with safe_open(path, framework="np") as f:
        meta = f.metadata() or {}
        out = {}
        for name in f.keys():
            a = f.get_tensor(name)
            out[name] = (names.get(a.dtype, str(a.dtype)), a)
    return out, meta


def cmd_logits(args):
    tensors, meta = read_with_library(args.file) if args.library else read_safetensors(args.file)
    cfg = reference_config(args.file[: -len(".safetensors")] + ".config.json")
    shapes = param_shapes(cfg)
    assert set(tensors) == set(shapes), (sorted(set(tensors) ^ set(shapes)))
    for name, shp in shapes.items():
        assert tuple(tensors[name][1].shape) == tuple(shp), (name, tensors[name][1].shape, shp)
        assert tensors[name][0] == "F32", (name, tensors[name][0])
    assert meta["format"] == "lrkv" and "model {" in meta["lrkv.run_config"], meta
    params = {n: torch.tensor(a, dtype=torch.float64) for n, (_, a) in tensors.items()}
    case = Path(args.case)
    tokens = np.load(case / "tokens.npy")
    with torch.no_grad():
        logits, _ = forward(cfg, params, tokens)
    cpp = np.load(case / "logits.npy")
    assert cpp.shape == tuple(logits.shape), (cpp.shape, logits.shape)
    e = rel_err(cpp, logits.numpy())
    print(f"{'ok  ' if e <= args.tol else 'FAIL'} {cfg['attention']} logits of the exported weights, step "
          f"{meta['lrkv.step']}: lrkv vs torch reference rel_err={e:.3e} (tol {args.tol:g}, "
          f"{len(tensors)} tensors, tokens {tokens.shape})")
    return 0 if e <= args.tol else 1


def cmd_params(args):
    tensors, _ = read_safetensors(args.file)
    saved = {p.name[:-4]: np.load(p) for p in Path(args.dir).glob("*.npy")}
    assert set(tensors) == set(saved), sorted(set(tensors) ^ set(saved))
    for name, (_, a) in tensors.items():
        assert a.shape == saved[name].shape and a.tobytes() == saved[name].astype(a.dtype).tobytes(), name
    print(f"ok   {args.file}: the {len(tensors)} parameters the training run ended with, bit for bit")
    return 0


def cmd_same(args):
    a, _ = read_safetensors(args.a)
    b, _ = read_safetensors(args.b)
    assert list(a) == list(b), (list(a), list(b))
    for name in a:
        assert a[name][0] == b[name][0] and a[name][1].shape == b[name][1].shape, name
        assert a[name][1].tobytes() == b[name][1].tobytes(), f"{name} differs"
    print(f"ok   {args.b}: the same {len(a)} tensors as {args.a}, bit for bit")
    return 0


def cmd_damage(args):
    tensors, meta = read_safetensors(args.file)
    tensors = {n: (d, a.copy()) for n, (d, a) in tensors.items()}
    if args.mode == "shape":
        d, a = tensors["layers.0.attn.wq"]
        tensors["layers.0.attn.wq"] = (d, a[:, :-8])
    elif args.mode == "dtype":
        tensors = {n: ("F64", a.astype(np.float64)) for n, (_, a) in tensors.items()}
    elif args.mode == "extra":
        tensors["layers.0.attn.bogus"] = ("F32", np.zeros((3, 4), np.float32))
    write_safetensors(args.out, tensors, meta)
    return 0


def cmd_val_loss(args):
    a = json.loads(Path(args.a).read_text())["final_val_loss"]
    b = json.loads(Path(args.b).read_text())["final_val_loss"]
    e = abs(a - b) / abs(a)
    ok = e <= args.tol
    print(f"{'ok  ' if ok else 'FAIL'} val_loss {a:.7f} (trained) vs {b:.7f} (imported, resumed) rel {e:.1e} "
          f"(tol {args.tol:g})")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("logits")
    p.add_argument("file")
    p.add_argument("case")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--library", action="store_true", help="read FILE with the safetensors package")
    p = sub.add_parser("params")
    p.add_argument("file")
    p.add_argument("dir")
    p = sub.add_parser("same")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("damage")
    p.add_argument("file")
    p.add_argument("out")
    p.add_argument("mode", choices=("shape", "dtype", "extra"))
    p = sub.add_parser("val_loss")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args()
    return {"logits": cmd_logits, "params": cmd_params, "same": cmd_same, "damage": cmd_damage, "val_loss": cmd_val_loss}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
