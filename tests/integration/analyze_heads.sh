#!/bin/bash
# `lrkv analyze heads` on real checkpoints: an LRKV model trained in one process and the same run at
# tp2 x pp2 (4 ranks) give the same per-layer diagnostic (the layout does not change the model, and
# the analysis loads any layout whole); MQA's and GQA's key maps are shared by their groups, which
# the Gram matrix shows; the JSON agrees with the table; bad input is refused by name.
# usage: analyze_heads.sh BIN SRC WORK MPIRUN...
. "$(dirname "$0")/lib.sh"
setup analyze_heads "$@"

train() {  # TAG NP CONFIG [ARGS...]
  local tag="$1" np="$2" config="$3"; shift 3
  local args=("${small_train[@]}" --config="$src/configs/$config" --steps=4 --out_dir="$w/$tag"
              --checkpoint_dir="$w/$tag/ckpt" "$@")
  if [ "$np" = 1 ]; then "$bin/lrkv" train "${args[@]}" >"$w/$tag.log" 2>&1
  else "${mpirun[@]}" -np "$np" "$bin/lrkv" train "${args[@]}" >"$w/$tag.log" 2>&1; fi \
    || { fail "train $tag"; tail -5 "$w/$tag.log"; }
}
train one 1 brown-tiny-lrkv.textproto
train tp2pp2 4 brown-tiny-lrkv.textproto --tp=2 --pp=2 --train.micro_batch=4
train mqa 1 brown-tiny-mqa.textproto
train gqa 1 brown-tiny-gqa.textproto
for tag in one tp2pp2 mqa gqa; do
  "$bin/lrkv" analyze heads --checkpoint="$w/$tag/ckpt" --format=json >"$w/$tag.json" 2>"$w/$tag.err" \
    || { fail "analyze $tag"; cat "$w/$tag.err"; }
done
"$bin/lrkv" analyze heads --checkpoint="$w/one/ckpt" >"$w/one.table" 2>/dev/null || fail "analyze table"

if /usr/bin/python3 - "$w" <<'PY'
import json, sys
import numpy as np
w = sys.argv[1]
one, tp = json.load(open(f"{w}/one.json")), json.load(open(f"{w}/tp2pp2.json"))
assert one["variant"] == "LRKV" and one["heads"] == 4 and one["step"] == 4 and len(one["layers"]) == 2, one
for a, b in zip(one["layers"], tp["layers"]):
    assert np.allclose(a["gram"], b["gram"], atol=1e-4), (a["gram"], b["gram"])
    for kind in ("uncentred", "centred"):
        assert abs(a[kind]["effective_rank"] - b[kind]["effective_rank"]) < 1e-3, kind
    g = np.array(a["gram"])
    assert np.allclose(g, g.T) and np.allclose(np.diag(g), 1), g
    assert 1 <= a["uncentred"]["effective_rank"] <= 4 and a["centred"]["effective_rank"] <= 3 + 1e-9, a
    off = (g.sum() - 4) / 12
    assert abs(a["mean_off_diagonal"] - off) < 1e-12, a
# The table's mean row is the JSON's mean over layers.
mean = [l for l in open(f"{w}/one.table") if l.startswith("mean")][0].split()
m = one["mean_over_layers"]
assert abs(float(mean[1]) - m["uncentred_effective_rank_pct"]) < 0.051, (mean, m)
assert abs(float(mean[3]) - m["centred_effective_rank_pct"]) < 0.051, (mean, m)
for tag in ("mqa", "gqa"):
    j = json.load(open(f"{w}/{tag}.json"))
    assert j["variant"] == tag.upper() and all(0 < l["uncentred"]["effective_rank"] <= 4 for l in j["layers"]), j
print("analyze heads: one process and tp2 x pp2 agree; ranks", [round(l["uncentred"]["effective_rank"], 3) for l in one["layers"]])
PY
then ok "diagnostic equal across layouts, JSON and table agree"; else fail "diagnostic"; fi

expect_error "missing checkpoint" "no checkpoint" -- "$bin/lrkv" analyze heads --checkpoint="$w/nothing"
expect_error "unknown argument" "unknown argument '--layer=1'" -- "$bin/lrkv" analyze heads --checkpoint="$w/one/ckpt" --layer=1
expect_error "bad format" "--format must be table or json" -- "$bin/lrkv" analyze heads --checkpoint="$w/one/ckpt" --format=csv
expect_error "no subcommand" "usage: lrkv analyze heads" -- "$bin/lrkv" analyze
finish analyze_heads
