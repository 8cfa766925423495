#!/usr/bin/env bash
# A parallel layout must not change the mathematics: for one attention variant, trains 10 steps in
# one process and under each implemented layout (dp2, dp2 + ZeRO-1, dp2 with 2 micro-batches per
# rank), and checks every step's loss
# and the final parameters within 1e-5 relative of the single process (per tensor,
# ||a - b|| / ||b||), and the data-parallel traffic per step against its analytic count (4 bytes
# per parameter). The learning rate is lowered to 5e-4: Adam turns float-rounding differences in
# near-zero gradients into steps of size lr, so the parameter tolerance scales with it.
#   layouts.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR CONFIG MPIRUN...
set -euo pipefail
bin="$1"; src="$2"; work="$3"; config="$4"; shift 4
mpirun=("$@")
data="$work/brown"
"$bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null
name="$(basename "$config" .textproto)"
common=(--config="$src/configs/$config" --data_dir="$data" --steps=10 --model.vocab_size=2048
        --model.n_layers=2 --model.seq_len=32 --train.global_batch=8 --train.lr=5e-4 --train.warmup_steps=3
        --train.eval_every=5 --train.eval_batches=2 --train.log_every=100)
run() {  # run TAG NP FLAGS...
  local tag="$1" np="$2"; shift 2
  rm -rf "$work/$name-$tag"
  "${mpirun[@]}" -np "$np" "$bin/lrkv" train "${common[@]}" --out_dir="$work/$name-$tag" \
    --train.save_params_dir="$work/$name-$tag/params" "$@" >"$work/$name-$tag.log" 2>&1 ||
    { cat "$work/$name-$tag.log"; exit 1; }
}
run single 1
run dp2 2 --dp=2 --print_layout
grep -q "^rank 1 (dp 1, pp 0, tp 0)" "$work/$name-dp2.log"  # --print_layout lists every rank
run dp2_zero1 2 --dp=2 --zero1
run dp2_accum 2 --dp=2 --micro_batches=2
/usr/bin/python3 - "$work" "$name" <<'PY'
import glob, json, os, sys
import numpy as np
work, name = sys.argv[1:]
def load(tag):
    d = f"{work}/{name}-{tag}"
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
    params = {os.path.basename(p)[:-4]: np.load(p) for p in glob.glob(f"{d}/params/*.npy")}
    return rows, params
ref_rows, ref_params = load("single")
n_params = sum(p.size for p in ref_params.values())
ok = True
for tag in ("dp2", "dp2_zero1", "dp2_accum"):
    rows, params = load(tag)
    worst_loss = max(abs(a["loss"] - b["loss"]) / abs(b["loss"]) for a, b in zip(rows, ref_rows))
    assert len(rows) == len(ref_rows) == 10
    worst_val = max(abs(a["val_loss"] - b["val_loss"]) / abs(b["val_loss"])
                    for a, b in zip(rows, ref_rows) if "val_loss" in b)
    assert params.keys() == ref_params.keys()
    worst_param = max(np.linalg.norm(params[k] - ref_params[k]) / max(np.linalg.norm(ref_params[k]), 1e-30)
                      for k in ref_params)
    padded = (n_params + 1) // 2 * 2
    expect = ({"comm_bytes_dp_all_reduce": 4 * n_params} if tag != "dp2_zero1" else
              {"comm_bytes_dp_reduce_scatter": 4 * padded, "comm_bytes_dp_all_gather": 4 * padded,
               "comm_bytes_dp_all_reduce": 8})
    comm_ok = all({k: v for k, v in r.items() if k.startswith("comm_")} == expect for r in rows)
    good = worst_loss < 1e-5 and worst_val < 1e-5 and worst_param < 1e-5 and comm_ok
    ok &= good
    print(f"{name} {tag}: loss rel {worst_loss:.2e}, val_loss rel {worst_val:.2e}, params rel {worst_param:.2e}, "
          f"dp bytes/step {'==' if comm_ok else '!='} {expect} -> {'ok' if good else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
