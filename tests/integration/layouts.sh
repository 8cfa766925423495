#!/usr/bin/env bash
# A parallel layout must not change the mathematics: for one attention variant, trains 10 steps in
# one process and under every layout below, and checks
#  - every step's loss and the validation losses within 1e-5 relative of the single process;
#  - the final parameters (gathered to global shapes) within 1e-5 relative, per tensor
#    (||a - b|| / ||b||);
#  - each step's traffic per group and kind, summed over all ranks, against its analytic count:
#      tp: per micro-batch of N = rows x T tokens, the embedding all-reduce (N d), two per layer
#          forward and two backward (N d each), the LM head's input gradient (N d), the
#          cross-entropy's row maxima (N) and sums (N x 2 doubles); per step, the gradients of
#          the parameters --print_layout reports as replicated with partial gradients;
#      pp: each micro-batch's activation forward and gradient backward across every stage boundary;
#      pp_ends: the tied embedding's gradient summed between the first and last stage;
#      dp: every rank's local gradients (ZeRO-1: reduce-scatter and all-gather of the padded shard);
#  - each step's FLOPs, summed over all ranks, against `lrkv flops --layout` exactly (the model's
#    FLOPs plus the work tensor parallelism repeats on every rank).
# Adam turns float-rounding differences in near-zero gradients (a sum that nearly cancels, whose
# sign is then rounding noise) into steps of size lr: the learning rate is lowered to 5e-4 and
# Adam's epsilon raised to 1e-6, which damps exactly those updates and nothing a real bug would cause.
#   layouts.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR CONFIG [--model.X=V ...] -- MPIRUN...
# LAYOUTS (env, optional) replaces the default list: "tag:ranks:flags,tag:ranks:flags,...".
# With --train.precision=BF16 among the flags, activations travel in 2 bytes (statistics, gradients
# and masters in 4) and TOLERANCE (env) replaces the 1e-5 bound: bf16 rounds each partial sum of a
# tensor-parallel reduction where one process rounds once.
set -euo pipefail
bin="$1"; src="$2"; work="$3"; config="$4"; shift 4
extra=()
while [ "$1" != "--" ]; do extra+=("$1"); shift; done
shift
mpirun=("$@")
data="$work/brown"
"$bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null
name="$(basename "$config" .textproto)$(printf '%s' "${extra[@]+"${extra[@]}"}" | tr -c 'a-z0-9_' '_' | sed 's/^_*/-/;s/-$//')"
common=(--config="$src/configs/$config" --data_dir="$data" --steps=10 --model.vocab_size=2048
        --model.n_layers=2 --model.seq_len=32 --train.global_batch=8 --train.lr=5e-4 --train.adam_eps=1e-6 --train.warmup_steps=3
        --train.eval_every=5 --train.eval_batches=2 --train.log_every=100 --train.peak_flops=1e9
        ${extra[@]+"${extra[@]}"})
# The config fields that change the analytic FLOPs, for `lrkv flops`.
flops_args=(--config="$src/configs/$config" --model.vocab_size=2048 --model.n_layers=2 --model.seq_len=32
            --train.global_batch=8)
for f in ${extra[@]+"${extra[@]}"}; do case "$f" in --model.*) flops_args+=("$f");; esac; done
default="tp2:2:--tp=2,tp4:4:--tp=4,pp2:2:--pp=2 --micro_batches=4,dp2:2:--dp=2,dp2_zero1:2:--dp=2 --zero1"
default+=",tp2_pp2:4:--tp=2 --pp=2 --micro_batches=4,tp2_dp2:4:--tp=2 --dp=2"
default+=",dp2_pp2_tp2:8:--dp=2 --pp=2 --tp=2 --micro_batches=4"
layouts="${LAYOUTS:-$default}"
run() {  # run TAG NP FLAGS...
  local tag="$1" np="$2"; shift 2
  rm -rf "$work/$name-$tag"
  local cmd=("$bin/lrkv")
  [ "$np" -gt 1 ] && cmd=("${mpirun[@]}" -np "$np" "$bin/lrkv")
  "${cmd[@]}" train "${common[@]}" --out_dir="$work/$name-$tag" --print_layout \
    --train.save_params_dir="$work/$name-$tag/params" "$@" >"$work/$name-$tag.log" 2>&1 ||
    { cat "$work/$name-$tag.log"; exit 1; }
  local layout="" f
  for f in "$@"; do
    case "$f" in --tp=*|--pp=*|--dp=*) layout+="${f:2:2}${f#*=},";; esac
  done
  "$bin/lrkv" flops "${flops_args[@]}" --layout="${layout:-tp1}" --format=json >"$work/$name-$tag.flops.json"
}
run single 1
tags=()
IFS=',' read -ra entries <<<"$layouts"
for entry in "${entries[@]}"; do
  IFS=':' read -r tag np flags <<<"$entry"
  # shellcheck disable=SC2086
  run "$tag" "$np" $flags
  tags+=("$tag:$flags")
done
act_bytes=4
case " ${extra[*]+"${extra[*]}"} " in *" --train.precision=BF16 "*) act_bytes=2;; esac
ACT_BYTES=$act_bytes TOL="${TOLERANCE:-1e-5}" /usr/bin/python3 - "$work" "$name" "${tags[@]}" <<'PY'
import glob, json, math, os, re, sys
import numpy as np
work, name, entries = sys.argv[1], sys.argv[2], sys.argv[3:]
A, TOL = int(os.environ["ACT_BYTES"]), float(os.environ["TOL"])  # bytes per activation value; tolerance
D, L, T, V, G = 128, 2, 32, 2048, 8  # d_model, layers, seq_len, vocab, global batch (the common flags)

def load(tag):
    d = f"{work}/{name}-{tag}"
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
    analytic = json.loads(open(f"{work}/{name}-{tag}.flops.json").readline())["job_train_flops_per_step"]
    params = {os.path.basename(p)[:-4]: np.load(p) for p in glob.glob(f"{d}/params/*.npy")}
    # --print_layout: per rank, its parameters' local element counts and TP roles.
    ranks, current = [], None
    for line in open(f"{work}/{name}-{tag}.log"):
        if re.match(r"rank \d+ \(dp", line):
            current = []
            ranks.append(current)
        elif current is not None and re.match(r"  \S+ +\(", line):
            shape = [int(x) for x in re.search(r"\(([\d, ]*)\)", line).group(1).split(",") if x.strip()]
            current.append((line.split()[0], math.prod(shape), "grad summed over tp" in line))
    return rows, params, ranks, analytic

def flag(flags, key, default):
    m = re.search(rf"--{key}=(\d+)", flags)
    return int(m.group(1)) if m else default

def expected_comm(flags, ranks, tied):
    dp, pp, tp = flag(flags, "dp", 1), flag(flags, "pp", 1), flag(flags, "tp", 1)
    micro = flag(flags, "micro_batches", 1)
    rows = G // dp // micro  # sequences per micro-batch
    n = rows * T
    out = {}
    if tp > 1:
        per_micro = A * n * D * (2 + 4 * L) + 4 * n + 16 * n
        partial = sum(e for r in ranks for (_, e, p) in r if p)
        out["comm_bytes_tp_all_reduce"] = dp * tp * micro * per_micro + 4 * partial
    if pp > 1:
        out["comm_bytes_pp_send_recv"] = dp * tp * micro * 2 * (pp - 1) * n * D * A
        if tied:
            out["comm_bytes_pp_ends_all_reduce"] = dp * 2 * V * D * 4
    if dp > 1:
        local = [sum(e for (_, e, _) in r) for r in ranks]
        if "--zero1" in flags:
            padded = sum((x + dp - 1) // dp * dp for x in local)
            out["comm_bytes_dp_reduce_scatter"] = padded * 4  # fp32 gradients
            out["comm_bytes_dp_all_gather"] = padded * A  # the values: bf16 under BF16 (fp32 masters sharded)
        else:
            out["comm_bytes_dp_all_reduce"] = 4 * sum(local)
    return out

ref_rows, ref_params, ref_ranks, ref_flops = load("single")
assert all(r["flops_step"] == ref_flops for r in ref_rows), (ref_rows[0]["flops_step"], ref_flops)
tied = "lm_head.weight" not in ref_params
ok = True
for entry in entries:
    tag, flags = entry.split(":", 1)
    rows, params, ranks, flops = load(tag)
    flops_ok = all(r["flops_step"] == flops for r in rows)
    assert len(rows) == len(ref_rows) == 10, (tag, len(rows))
    worst_loss = max(abs(a["loss"] - b["loss"]) / abs(b["loss"]) for a, b in zip(rows, ref_rows))
    worst_val = max(abs(a["val_loss"] - b["val_loss"]) / abs(b["val_loss"])
                    for a, b in zip(rows, ref_rows) if "val_loss" in b)
    assert params.keys() == ref_params.keys(), (tag, set(params) ^ set(ref_params))
    worst_param = max(np.linalg.norm(params[k] - ref_params[k]) / max(np.linalg.norm(ref_params[k]), 1e-30)
                      for k in ref_params)
    expect = expected_comm(flags, ranks, tied)
    comm = [{k: v for k, v in r.items() if k.startswith("comm_")} for r in rows]
    comm_ok = all(c == expect for c in comm)
    good = worst_loss < TOL and worst_val < TOL and worst_param < TOL and comm_ok and flops_ok
    ok &= good
    print(f"{name} {tag}: loss rel {worst_loss:.1e}, val_loss rel {worst_val:.1e}, params rel {worst_param:.1e}, "
          f"bytes/step {expect} {'==' if comm_ok else '!= ' + str(comm[0])}, "
          f"FLOPs/step {rows[0]['flops_step']} {'==' if flops_ok else '!='} {flops} -> {'ok' if good else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
