#!/usr/bin/env bash
# `lrkv flops-compare` on synthetic metrics files whose answers are known by construction (reached
# step, FLOPs, saving; a tie counts as reached; a baseline never reached), its CSV/JSON/PNG and its
# errors; seed groups (globs) with known interpolated crossings, intervals checked with scipy and
# each verdict (saving, within noise, not reached); `lrkv flops-project` on the paper's 6.3B LRKV and MHA configs against figures computed here
# from `lrkv flops --format=json`.
#   flops_compare.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
bin="$1"; src="$2"; work="$3"
py=/usr/bin/python3
rm -rf "$work"; mkdir -p "$work"
fail() { echo "flops_compare: FAIL: $*" >&2; exit 1; }
# expect_error NEEDLE CMD...: CMD must fail and print NEEDLE on stderr.
expect_error() {
  local needle="$1"; shift
  if "$@" >/dev/null 2>"$work/err"; then fail "succeeded: $*"; fi
  grep -qF -- "$needle" "$work/err" || { cat "$work/err" >&2; fail "no '$needle' from: $*"; }
}

# run DIR STEPS FLOPS_PER_STEP "STEP:VAL_LOSS ...": metrics.jsonl as `lrkv train` writes it.
run() {
  mkdir -p "$work/$1"
  $py - "$work/$1/metrics.jsonl" "$2" "$3" "$4" <<'EOF'
import json, sys
path, steps, fps, evals = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
val = {int(s): float(v) for s, v in (e.split(":") for e in evals.split())}
with open(path, "w") as f:
    for s in range(1, steps + 1):
        r = {"step": s, "loss": 7.0 - 0.1 * s, "lr": 1e-3, "tokens": 4096 * s, "flops_step": fps,
             "flops_cumulative": fps * s}
        if s in val:
            r["val_loss"] = val[s]
        f.write(json.dumps(r) + "\n")
EOF
}
run mha 8 1000000000000 "2:6.0 4:5.5 6:5.2 8:5.0"        # final val_loss 5.0 at 8e12 FLOPs
run gqa 10 800000000000 "5:5.6 10:5.3"                    # final 5.3 at 8e12
run strong 4 1000000000000 "4:4.5"                       # final 4.5: never reached
run lrkv 8 900000000000 "2:5.9 4:5.3 6:4.99 8:4.8"       # 5.0 first at step 6 (5.4e12), 5.3 at step 4 (tie)

"$bin/lrkv" flops-compare --baseline="$work/mha/metrics.jsonl" --baseline="$work/gqa/metrics.jsonl" \
  --baseline="$work/strong/metrics.jsonl" --candidate="$work/lrkv/metrics.jsonl" --out="$work/out/cmp" | tee "$work/table"
grep -qE "^strong +4\.5000 \| +4 +16384 +4e\+12 \| not reached: best 4\.8000 at step 8$" "$work/table" || fail "table"
$py - "$work/out/cmp" <<'EOF'
import csv, json, sys
prefix = sys.argv[1]
rows = list(csv.DictReader(open(prefix + ".csv")))
js = json.load(open(prefix + ".json"))
assert [r["baseline"] for r in rows] == ["mha", "gqa", "strong"], rows
assert js["metric"] == "val_loss" and js["candidate"] == "lrkv" and len(js["rows"]) == 3
# mha: target 5.0; the candidate's first val_loss <= 5.0 is 4.99 at step 6.
m, g, s = js["rows"]
assert m["reached"] is True and m["target"] == 5.0 and m["candidate_value"] == 4.99, m
assert (m["baseline_step"], m["baseline_tokens"], m["baseline_flops"]) == (8, 32768, 8e12), m
assert (m["candidate_step"], m["candidate_tokens"], m["candidate_flops"]) == (6, 24576, 5.4e12), m
assert m["flops_saved"] == 2.6e12 and m["flops_saved_pct"] == 100.0 * (1.0 - 5.4e12 / 8e12), m
assert abs(m["flops_saved_pct"] - 32.5) < 1e-12 and m["steps_ratio"] == 0.75 and m["tokens_ratio"] == 0.75, m
# gqa: target 5.3 is met exactly (<=) at step 4, 3.6e12 FLOPs against 8e12.
assert g["reached"] is True and (g["candidate_step"], g["candidate_flops"]) == (4, 3.6e12), g
assert g["flops_saved_pct"] == 100.0 * (1.0 - 3.6e12 / 8e12) and g["steps_ratio"] == 0.4, g
# strong: never reached; the candidate's best is reported, the candidate side is null / empty.
assert s["reached"] is False and s["candidate_step"] is None and s["flops_saved_pct"] is None, s
assert s["candidate_best"] == 4.8 and s["candidate_best_step"] == 8, s
# The CSV carries the same numbers.
for r, j in zip(rows, js["rows"]):
    for k, v in j.items():
        want = "" if v is None else ("true" if v is True else "false" if v is False else str(v))
        assert r[k] == want or float(r[k]) == v, (k, r[k], v)
assert rows[2]["candidate_flops"] == "" and rows[0]["candidate_flops"] == "5400000000000"
# The plot's input: every run's series, baselines then the candidate.
assert [r["label"] for r in js["runs"]] == ["mha", "gqa", "strong", "lrkv"]
assert js["runs"][3]["value"] == [5.9, 5.3, 4.99, 4.8] and js["runs"][3]["flops"][0] == 1.8e12
EOF
png_ok() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && [ "$(stat -c %s "$1")" -gt 10000 ]; }
png_ok "$work/out/cmp.png" || fail "$work/out/cmp.png is not a PNG"

# Default prefix: flops_compare.* next to the candidate.
"$bin/lrkv" flops-compare --baseline="$work/mha/metrics.jsonl" --candidate="$work/lrkv/metrics.jsonl" >/dev/null
for ext in csv json; do [ -s "$work/lrkv/flops_compare.$ext" ] || fail "no $work/lrkv/flops_compare.$ext"; done
png_ok "$work/lrkv/flops_compare.png" || fail "default-prefix PNG"
# Without Python the plot is skipped with a warning; the command still succeeds with its CSV/JSON.
LRKV_PYTHON=/nonexistent/python3 "$bin/lrkv" flops-compare --baseline="$work/mha/metrics.jsonl" \
  --candidate="$work/lrkv/metrics.jsonl" --out="$work/nopy/cmp" >/dev/null 2>"$work/err"
grep -q "warning: no plot (/nonexistent/python3 not found)" "$work/err" || fail "no-python warning"
[ -s "$work/nopy/cmp.csv" ] && [ -s "$work/nopy/cmp.json" ] && [ ! -e "$work/nopy/cmp.png" ] || fail "no-python outputs"

# Errors name the file and line.
cp "$work/mha/metrics.jsonl" "$work/broken.jsonl"
sed -i '3s/.*/{"step": 3, "loss": 6.7,/' "$work/broken.jsonl"
expect_error "$work/broken.jsonl:3: malformed JSON" \
  "$bin/lrkv" flops-compare --baseline="$work/broken.jsonl" --candidate="$work/lrkv/metrics.jsonl"
printf '{"step": 1, "tokens": 4096, "flops_cumulative": 1}\n{"step": 2, "tokens": 8192, "val_loss": 5.0}\n' >"$work/noflops.jsonl"
expect_error "$work/noflops.jsonl:2: record has no 'flops_cumulative'" \
  "$bin/lrkv" flops-compare --baseline="$work/noflops.jsonl" --candidate="$work/lrkv/metrics.jsonl"
expect_error "cannot open metrics file $work/missing.jsonl" \
  "$bin/lrkv" flops-compare --baseline="$work/missing.jsonl" --candidate="$work/lrkv/metrics.jsonl"
expect_error "$work/mha/metrics.jsonl: no record has 'val_ppl' (8 records read)" \
  "$bin/lrkv" flops-compare --baseline="$work/mha/metrics.jsonl" --candidate="$work/lrkv/metrics.jsonl" --metric=val_ppl
expect_error "needs --baseline=FILE" "$bin/lrkv" flops-compare --candidate="$work/lrkv/metrics.jsonl"
expect_error "unknown argument '--baseline'" "$bin/lrkv" flops-compare --baseline --candidate=x

# Seed groups: three baseline seeds (final 5.0, 5.1, 4.9) against candidate groups whose crossings,
# interpolated between evaluations, are known; every statistic recomputed here with scipy.
run mha-s1 8 1000000000000 "2:6.0 4:5.5 6:5.2 8:5.0"
run mha-s2 8 1000000000000 "2:6.1 4:5.6 6:5.3 8:5.1"
run mha-s3 8 1000000000000 "2:5.9 4:5.4 6:5.1 8:4.9"
run lrkv-s1 8 900000000000 "2:5.9 4:5.3 6:4.7 8:4.5"
run lrkv-s2 8 900000000000 "2:5.8 4:5.1 6:4.8 8:4.6"
run lrkv-s3 8 900000000000 "2:6.0 4:5.4 6:4.6 8:4.4"
run near-s1 8 1000000000000 "4:5.5 6:5.2 8:4.74"
run near-s2 8 1000000000000 "4:5.5 6:5.3 8:4.70"
run never-s1 8 1000000000000 "4:5.5 8:4.9"
run half-s1 8 1000000000000 "4:5.5 8:4.9"                  # reaches the mean 5.0, not its lower end 4.75
run half-s2 8 1000000000000 "4:5.5 8:4.6"
run never-s2 8 1000000000000 "4:5.5 8:5.3"
"$bin/lrkv" flops-compare --baseline="$work/mha-s*/metrics.jsonl" --candidate="$work/lrkv-s*/metrics.jsonl" \
  --out="$work/groups/lrkv" | tee "$work/groups_table"
grep -qE "^mha-s\* +3 5\.0000 \[4\.7516, 5\.2484\] +3 .* saving$" "$work/groups_table" || fail "group table"
"$bin/lrkv" flops-compare --baseline="$work/mha-s*/metrics.jsonl" --candidate="$work/near-s*/metrics.jsonl" \
  --out="$work/groups/near" >/dev/null
"$bin/lrkv" flops-compare --baseline="$work/mha-s*/metrics.jsonl" --candidate="$work/never-s*/metrics.jsonl" \
  --out="$work/groups/never" >/dev/null
$py - "$work" <<'EOF2'
import json, math, sys
import numpy as np
from scipy import stats
w = sys.argv[1]
def crossing(evals, target):  # evals: [(step, value)], linear between the bracketing evaluations
    prev = None
    for s, v in evals:
        if v <= target:
            if prev is None: return s
            f = (prev[1] - target) / (prev[1] - v)
            return prev[0] + f * (s - prev[0])
        prev = (s, v)
    return None
def ci(xs):
    m, sd = np.mean(xs), np.std(xs, ddof=1)
    h = stats.t.ppf(0.975, len(xs) - 1) * sd / math.sqrt(len(xs))
    return m, sd, m - h, m + h
close = lambda a, b: abs(a - b) <= 1e-9 * max(1.0, abs(b))
base = [5.0, 5.1, 4.9]
lrkv = [[(2, 5.9), (4, 5.3), (6, 4.7), (8, 4.5)], [(2, 5.8), (4, 5.1), (6, 4.8), (8, 4.6)],
        [(2, 6.0), (4, 5.4), (6, 4.6), (8, 4.4)]]
g = json.load(open(w + "/groups/lrkv.json"))["groups"][0]
m, sd, lo, hi = ci(base)
assert g["baseline"] == "mha-s*" and g["candidate"] == "lrkv-s*" and len(g["baseline_runs"]) == 3, g
assert close(g["target"], m) and close(g["target_lo"], lo) and close(g["target_hi"], hi), g
assert close(g["baseline_final"]["sd"], sd) and g["baseline_flops"] == 8e12 and g["baseline_steps"] == 8
saving = lambda t: [100 * (1 - crossing(e, t) * 0.9e12 / 8e12) for e in lrkv]
ratio = lambda t: [crossing(e, t) / 8 for e in lrkv]
assert all(close(s["crossing_step"], crossing(e, m)) for s, e in zip(g["seeds"], lrkv)), g["seeds"]
assert close(g["seeds"][1]["crossing_step"], 4 + 2 / 3) and close(g["seeds"][1]["crossing_flops"], (4 + 2 / 3) * 0.9e12)
sm = ci(saving(m))
assert g["reached"] == 3 and close(g["saving_pct"]["mean"], sm[0]) and close(g["saving_pct"]["lo"], sm[2]), g
assert close(g["saving_pct_low"], ci(saving(lo))[2]) and close(g["saving_pct_high"], ci(saving(hi))[3]), g
assert close(g["steps_ratio"]["mean"], ci(ratio(m))[0]) and close(g["steps_ratio_high"], ci(ratio(lo))[3]), g
assert close(g["steps_ratio_low"], ci(ratio(hi))[2]), g
cand_final = [4.5, 4.6, 4.4]
d = stats.ttest_ind(cand_final, base, equal_var=False)
welch = np.mean(cand_final) - np.mean(base)
va, vb = np.var(base, ddof=1) / 3, np.var(cand_final, ddof=1) / 3
dof = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)
h = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
fd = g["final_difference"]
assert close(fd["mean"], welch) and close(fd["lo"], welch - h) and close(fd["hi"], welch + h), (fd, welch, h)
assert g["saving_pct_low"] > 0 and g["verdict"] == "saving", g
# Nine rows: every (baseline seed, candidate seed) pair with the single-run rule.
assert len(json.load(open(w + "/groups/lrkv.json"))["rows"]) == 9
# near: both seeds reach the mean target, but the saving's interval holds 0.
n = json.load(open(w + "/groups/near.json"))["groups"][0]
assert n["reached"] == 2 and n["saving_pct_low"] < 0 < n["saving_pct_high"] and n["verdict"] == "within noise", n
# never: one seed ends above the target: no saving is claimed.
v = json.load(open(w + "/groups/never.json"))["groups"][0]
assert v["reached"] == 1 and v["saving_pct"]["n"] == 0 and v["verdict"] == "not reached", v
assert v["seeds"][1]["reached"] is False and v["seeds"][1]["crossing_flops"] is None, v
EOF2
png_ok "$work/groups/lrkv.png" || fail "seed-group PNG"
expect_error "no metrics file matches $work/nothing-*/metrics.jsonl" \
  "$bin/lrkv" flops-compare --baseline="$work/nothing-*/metrics.jsonl" --candidate="$work/lrkv-s1/metrics.jsonl"
expect_error "one --candidate" "$bin/lrkv" flops-compare --baseline="$work/mha/metrics.jsonl" \
  --candidate="$work/lrkv-s1/metrics.jsonl" --candidate="$work/lrkv-s2/metrics.jsonl"
# flops-project carries the group's range: saving low / high from the steps ratio's high / low.
"$bin/lrkv" flops-project --config="$src/configs/paper/6.3b-lrkv.textproto" \
  --baseline="$src/configs/paper/6.3b-mha.textproto" --tokens=1e9 --steps_ratio_from="$work/groups/lrkv.json" \
  --mfu=0.4 --peak=h100 --format=json >"$work/p_group.json"
# A bound flops-compare cannot set is unbounded in the projection: null, and "unbounded" in the table.
"$bin/lrkv" flops-compare --baseline="$work/mha-s*/metrics.jsonl" --candidate="$work/half-s*/metrics.jsonl" \
  --out="$work/groups/half" >/dev/null
"$bin/lrkv" flops-project --config="$src/configs/paper/6.3b-lrkv.textproto" \
  --baseline="$src/configs/paper/6.3b-mha.textproto" --tokens=1e9 --steps_ratio_from="$work/groups/half.json" \
  --format=json >"$work/p_half.json"
"$bin/lrkv" flops-project --config="$src/configs/paper/6.3b-lrkv.textproto" \
  --baseline="$src/configs/paper/6.3b-mha.textproto" --tokens=1e9 --steps_ratio_from="$work/groups/half.json" \
  | grep -q "steps ratio [0-9.]* to unbounded, saving unbounded to " || fail "unbounded range in the table"
$py - "$work" <<'EOF2'
import json, sys
w = sys.argv[1]
g = json.load(open(w + "/groups/half.json"))["groups"][0]
assert g["reached"] == 2 and g["saving_pct_low"] is None and g["steps_ratio_high"] is None, g
assert g["saving_pct_high"] is not None and g["verdict"] == "within noise", g
p = json.load(open(w + "/p_half.json"))
assert p["steps_ratio_high"] is None and p["saving_pct_low"] is None, p
assert p["steps_ratio_low"] == g["steps_ratio_low"] and p["saving_pct_high"] > p["saving_pct"], p
EOF2
expect_error "has no baseline group 'gqa-s*' (it has mha-s*)" "$bin/lrkv" flops-project \
  --config="$src/configs/paper/6.3b-lrkv.textproto" --baseline="$src/configs/paper/6.3b-mha.textproto" --tokens=1e9 \
  --steps_ratio_from="$work/groups/lrkv.json" --steps_ratio_baseline='gqa-s*'
expect_error "never reached mha-s*'s mean val_loss" "$bin/lrkv" flops-project \
  --config="$src/configs/paper/6.3b-lrkv.textproto" --baseline="$src/configs/paper/6.3b-mha.textproto" --tokens=1e9 \
  --steps_ratio_from="$work/groups/never.json"
$py - "$work" <<'EOF2'
import json, sys
w = sys.argv[1]
g = json.load(open(w + "/groups/lrkv.json"))["groups"][0]
p = json.load(open(w + "/p_group.json"))
assert p["steps_ratio"] == g["steps_ratio"]["mean"], p
assert p["steps_ratio_low"] == g["steps_ratio_low"] and p["steps_ratio_high"] == g["steps_ratio_high"], p
r = p["candidate_train_flops_per_token"] / p["baseline_train_flops_per_token"]
for key, x in (("saving_pct_low", g["steps_ratio_high"]), ("saving_pct_high", g["steps_ratio_low"])):
    assert abs(p[key] - 100 * (1 - x * r)) < 1e-9, (key, p[key], x)
assert p["saving_pct_low"] < p["saving_pct"] < p["saving_pct_high"], p
assert p["gpu_hours_saved_low"] < p["baseline_gpu_hours"] - p["candidate_gpu_hours"] < p["gpu_hours_saved_high"], p
EOF2

# flops-project, 6.3B LRKV against MHA, checked against `lrkv flops`.
lrkv_cfg="$src/configs/paper/6.3b-lrkv.textproto"; mha_cfg="$src/configs/paper/6.3b-mha.textproto"
"$bin/lrkv" flops --config="$lrkv_cfg" --config="$mha_cfg" --format=json >"$work/flops.json"
project() { "$bin/lrkv" flops-project --config="$lrkv_cfg" --baseline="$mha_cfg" --format=json "$@"; }
project --tokens=1.26e11 --steps_ratio=0.9 --mfu=0.4 --gpus=256 --peak=h100 >"$work/p_h100.json"
project --tokens=1.26e11 --steps_ratio=0.9 --mfu=0.4 --gpus=256 --peak=989e12 >"$work/p_number.json"
project --tokens=1.26e11 --steps_ratio=0.9 --mfu=0.4 --gpus=256 --peak=H100_SXM_BF16 >"$work/p_name.json"
for d in h200:989e12 a100:312e12 h100-pcie:756e12 a100-fp32:19.5e12; do
  project --tokens=1e9 --mfu=0.5 --peak="${d%%:*}" | $py -c "import json,sys; assert json.load(sys.stdin)['peak_flops_per_s'] == ${d#*:}, '$d'"
done
# The one-baseline comparison above measured tokens ratio 0.75 (step 6 of 8).
project --tokens=1e9 --steps_ratio_from="$work/lrkv/flops_compare.json" >"$work/p_from.json"
$py - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
lrkv, mha = [json.loads(l) for l in open(w + "/flops.json")]
tc, tb = lrkv["train_flops_per_token"], mha["train_flops_per_token"]
assert tc == 3 * lrkv["forward_flops_per_token"] and 0.9 < tc / tb < 0.93, (tc, tb)
p = json.load(open(w + "/p_h100.json"))
n, x, mfu, gpus, peak = 1.26e11, 0.9, 0.4, 256, 989e12
want = {
    "candidate_train_flops_per_token": tc, "baseline_train_flops_per_token": tb,
    "flops_per_token_ratio": tc / tb, "baseline_total_flops": n * tb,
    "candidate_total_flops_same_tokens": n * tc, "candidate_tokens_to_target": x * n,
    "candidate_total_flops": x * n * tc, "saving_per_token_pct": 100 * (1 - tc / tb),
    "saving_pct": 100 * (1 - x * tc / tb), "saving_flops": n * tb - x * n * tc,
    "peak_flops_per_s": peak, "baseline_gpu_hours": n * tb / (mfu * peak) / 3600,
    "candidate_gpu_hours": x * n * tc / (mfu * peak) / 3600,
    "baseline_wall_hours": n * tb / (mfu * peak) / 3600 / gpus,
    "candidate_wall_hours": x * n * tc / (mfu * peak) / 3600 / gpus,
}
for k, v in want.items():
    assert abs(p[k] - v) <= 1e-12 * abs(v), (k, p[k], v)
assert p["candidate_train_flops_per_token"] == tc and p["baseline_train_flops_per_token"] == tb
print(f"flops-project 6.3B LRKV vs MHA, 126B tokens, X 0.9: saving {p['saving_pct']:.2f}%, "
      f"{p['baseline_gpu_hours']:.0f} -> {p['candidate_gpu_hours']:.0f} H100-hours at 40% MFU")
for other in ("p_number", "p_name"):
    assert json.load(open(f"{w}/{other}.json"))["baseline_gpu_hours"] == p["baseline_gpu_hours"], other
f = json.load(open(w + "/p_from.json"))
assert f["steps_ratio"] == 0.75 and "baseline_gpu_hours" not in f, f
assert abs(f["saving_pct"] - 100 * (1 - 0.75 * tc / tb)) < 1e-12, f
EOF
"$bin/lrkv" flops-project --config="$lrkv_cfg" --baseline="$mha_cfg" --tokens=1.26e11 --mfu=0.4 --peak=h100 --gpus=256 |
  grep -E "^saving: 8\.28% from FLOPs per token alone; 8\.28% to the baseline's loss" >/dev/null || fail "project table"
expect_error "unknown device 'b300'" project --tokens=1e9 --mfu=0.4 --peak=b300
expect_error "--mfu and --peak go together" project --tokens=1e9 --mfu=0.4
expect_error "--tokens must be a positive number, got 'lots'" project --tokens=lots
expect_error "compares 3 baselines" project --tokens=1e9 --steps_ratio_from="$work/out/cmp.json"
LRKV_PYTHON=/nonexistent "$bin/lrkv" flops-compare --baseline="$work/strong/metrics.jsonl" \
  --candidate="$work/lrkv/metrics.jsonl" --out="$work/out/strong" >/dev/null 2>&1
expect_error "the candidate never reached the baseline's val_loss" \
  project --tokens=1e9 --steps_ratio_from="$work/out/strong.json"
echo "flops_compare: ok"
