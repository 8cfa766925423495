#!/usr/bin/env bash
# The variant study (README "Quality per FLOP"): every attention variant trained on the Brown corpus
# with several seeds at two scales, then compared by `lrkv flops-compare` (seed groups),
# `lrkv analyze heads` and `lrkv flops-project`, and summarised by bench/variant_study_report.py
# into bench/results/variant_study.{json,md} and bench/results/variant_study_*.png.
#   bench/variant_study.sh [--plan | --verify] [BUILD_BIN_DIR] [DATA_DIR]
# Resumable: a run whose eval.json exists is skipped; an interrupted run resumes from its latest
# checkpoint (bit-exact). Runs go in $STUDY_DIR (runs/study); $JOBS (2) single-threaded runs at once,
# which on this 2-core machine is faster than one run on 2 threads (the models are small). --plan
# prints the runs and exits. --verify retrains the first demo run from scratch (about 4 minutes)
# and checks that its evaluations and final loss are within 1e-3 relative of
# bench/results/variant_study.json's, printing the largest difference. They were digit for digit
# until the training code's arithmetic changed after the study was run (2026-12-02): on 2026-12-07
# the retrained run differed by at most 4.5e-5 relative, the same with the code of that morning.
# Everything runs inside main(), so the script may be edited while a study is running.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=run
case "${1:-}" in --plan) mode=plan; shift ;; --verify) mode=verify; shift ;; esac
bin="${1:-build/bin}" data="${2:-data_out/brown}"
study="${STUDY_DIR:-runs/study}" jobs="${JOBS:-2}"
# The committed results were trained with every float GEMM on OpenBLAS, before oneDNN took most of
# them (runtime/ops/cpu/blas.cc); new and resumed runs, and --verify, use the same library.
export LRKV_CPU_GEMM="${LRKV_CPU_GEMM:-openblas}"

# The demo recipe (configs/brown-tiny-*.textproto) cut to 400 steps of 16 x 128 tokens (0.82M), and
# a wide scale (d 256, 6 layers, 8 heads, T 256) at 350 steps of 8 x 256 (0.72M): what fits the
# study in about an hour on 2 cores. Every run evaluates every 25 steps on the same 8 validation
# batches and at the end on the whole validation split (`lrkv eval`). A seed sets the
# initialisation and the data order, so seed s gives every variant the same batches.
#
# Ratios (d_h = 32 at both scales), from the paper's Table 7 (bench/README.md says more):
#   LRKV  r = 12 = 0.375 d_h (the paper's 0.36-0.43 d_h); MQA one KV head;
#   GQA   H/2 KV heads (Table 7's 128M: 3 KV heads of 6);
#   MLA   d_c = d_h at the demo (128M's d_c = d_h), 2 d_h wide (512M/1.2B's d_c = 2 d_h), d_R = d_h/2;
#   MLRA  d_c = 4 d_h in 4 blocks of d_h, d_R = d_h/2 (the MLRA paper's MLRA-4).
demo_common="--steps=400 --train.eval_every=25"
wide_common="--model.d_model=256 --model.n_layers=6 --model.n_heads=8 --model.d_ff=1024 --model.seq_len=256 \
--steps=350 --train.global_batch=8 --train.eval_every=25"
# name|config|overrides|seeds
groups=(
  "wide-mha|brown-tiny-mha|$wide_common|1 2"
  "wide-lrkv|brown-tiny-lrkv|$wide_common --model.lrkv_rank=12|1 2"
  "wide-mla|brown-tiny-mla|$wide_common --model.mla.kv_lora_rank=64|1 2"
  "demo-mha|brown-tiny-mha|$demo_common|1 2 3"
  "demo-gqa|brown-tiny-gqa|$demo_common|1 2 3"
  "demo-mqa|brown-tiny-mha|$demo_common --model.attention=MQA|1 2 3"
  "demo-mla|brown-tiny-mla|$demo_common --model.mla.kv_lora_rank=32|1 2 3"
  "demo-lrkv|brown-tiny-lrkv|$demo_common --model.lrkv_rank=12|1 2 3"
  "demo-mlra|brown-tiny-mlra|$demo_common|1 2 3"
)

runs=()  # "dir|config|overrides|seed"
for g in "${groups[@]}"; do
  IFS='|' read -r name config overrides seeds <<<"$g"
  for s in $seeds; do runs+=("$study/$name-s$s|configs/$config.textproto|$overrides|$s"); done
done

# One run: train (resuming from its checkpoint if there is one), then evaluate the whole split.
train_one() {
  local dir="$1" config="$2" overrides="$3" seed="$4" resume=()
  [ -f "$dir/eval.json" ] && return 0
  if ls -d "$dir"/ckpt/step_* >/dev/null 2>&1; then resume=(--resume); else rm -rf "$dir"; fi
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 "$bin/lrkv" train --config="$config" $overrides --seed="$seed" --data_dir="$data" \
    --out_dir="$dir" --checkpoint_dir="$dir/ckpt" --save_every=200 "${resume[@]}" >>"$dir/train.log" 2>&1 ||
    { echo "variant_study: $dir failed; the end of $dir/train.log:" >&2; tail -5 "$dir/train.log" >&2; return 1; }
  OMP_NUM_THREADS=1 "$bin/lrkv" eval --checkpoint="$dir/ckpt" --data_dir="$data" --format=json \
    >"$dir/eval.json.tmp" 2>>"$dir/train.log"
  mv "$dir/eval.json.tmp" "$dir/eval.json"
}

# The whole study: train what is not done, then compare, analyse, project and report.
study_main() {
  start=$(date +%s) total=${#runs[@]} done_before=0
  for r in "${runs[@]}"; do [ -f "${r%%|*}/eval.json" ] && done_before=$((done_before + 1)); done
  echo "variant_study: $total runs in $study ($done_before already done), $jobs at a time" >&2
  progress() {  # the study's progress: runs done, elapsed, ETA from the runs finished in this launch
    local finished=0 now
    for r in "${runs[@]}"; do [ -f "${r%%|*}/eval.json" ] && finished=$((finished + 1)); done
    now=$(date +%s)
    local new=$((finished - done_before)) eta="?"
    [ "$new" -gt 0 ] && eta="$(( (now - start) * (total - finished) / new / 60 )) min"
    echo "variant_study: $finished/$total runs done, $(( (now - start) / 60 )) min elapsed, ETA $eta ($1)" >&2
  }
  failed=0
  pids=()
  for r in "${runs[@]}"; do
    IFS='|' read -r dir config overrides seed <<<"$r"
    [ -f "$dir/eval.json" ] && continue
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; progress "running"; done
    echo "variant_study: starting $dir" >&2
    train_one "$dir" "$config" "$overrides" "$seed" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  progress "training finished"
  [ "$failed" = 0 ] || { echo "variant_study: some runs failed (rerun to resume them)" >&2; return 1; }

  # Comparisons: each variant against MHA, GQA and MLA (seed groups), head diversity per run, and the
  # projection to the paper's 6.3B configs.
  out=bench/results/variant_study
  mkdir -p "$out"
  for g in "${groups[@]}"; do  # each group's analytic cost (KV cache per token) for the report
    IFS='|' read -r name config overrides seeds <<<"$g"
    model_overrides=()
    for o in $overrides; do [[ "$o" == --model.* ]] && model_overrides+=("$o"); done
    "$bin/lrkv" flops --config="configs/$config.textproto" "${model_overrides[@]}" --format=json >"$study/$name.flops.json"
  done
  for scale in demo wide; do
    for cand in "$study/$scale"-*-s1; do
      v="$(basename "$cand" -s1)"
      bases=()
      for b in mha gqa mla; do
        [ "$v" = "$scale-$b" ] || [ ! -d "$study/$scale-$b-s1" ] || bases+=(--baseline="$study/$scale-$b-s*/metrics.jsonl")
      done
      "$bin/lrkv" flops-compare "${bases[@]}" --candidate="$study/$v-s*/metrics.jsonl" --out="$out/compare-$v" \
        >"$out/compare-$v.txt"
    done
  done
  for r in "${runs[@]}"; do
    dir="${r%%|*}"
    "$bin/lrkv" analyze heads --checkpoint="$dir/ckpt" --format=json >"$dir/heads.json"
  done
  # A projection needs every LRKV seed to reach MHA's mean loss; when one does not, the file says why.
  for scale in demo wide; do
    f="$out/project-$scale-lrkv.json"
    if ! "$bin/lrkv" flops-project --config=configs/paper/6.3b-lrkv.textproto --baseline=configs/paper/6.3b-mha.textproto \
        --tokens=126e9 --steps_ratio_from="$out/compare-$scale-lrkv.json" --steps_ratio_baseline="$scale-mha-s*" \
        --mfu=0.45 --peak=h100 --gpus=64 --format=json >"$f" 2>"$f.err"; then
      /usr/bin/python3 -c 'import json, sys; print(json.dumps({"error": open(sys.argv[1]).read().strip()}))' "$f.err" >"$f"
    fi
    rm -f "$f.err"
  done
  /usr/bin/python3 bench/variant_study_report.py "$study" bench/results
}

# --verify: the first demo run again, in a scratch directory, against the committed results.
verify() {
  local r="" name
  for r in "${runs[@]}"; do [[ "${r%%|*}" == */demo-* ]] && break; done
  IFS='|' read -r dir config overrides seed <<<"$r"
  name="$(basename "$dir")"
  local scratch
  scratch="$(mktemp -d)"
  echo "variant_study: retraining $name in $scratch" >&2
  train_one "$scratch/$name" "$config" "$overrides" "$seed"
  /usr/bin/python3 - "$scratch/$name" "$name" bench/results/variant_study.json <<'PY'
import json, sys
run_dir, name, results = sys.argv[1:]
ref = [r for r in json.load(open(results))["runs"] if r["dir"].endswith("/" + name)][0]
evals = [json.loads(l) for l in open(run_dir + "/metrics.jsonl") if "val_loss" in l]
got = [r["val_loss"] for r in evals]
whole = json.load(open(run_dir + "/eval.json"))["loss"]
want = ref["curve"]["val_loss"] + [ref["final_val_loss_whole_split"]]
assert len(got) + 1 == len(want), ("evaluation count differs", len(got), len(want) - 1)
worst = max(abs(g / w - 1) for g, w in zip(got + [whole], want))
assert worst <= 1e-3, ("evaluations differ", worst, got, ref["curve"]["val_loss"])
print(f"variant_study: {name} reproduced: {len(got)} evaluations and the whole-split loss {whole!r} "
      f"(committed {want[-1]!r}), at most {worst:.1e} relative apart")
PY
  rm -rf "$scratch"
}

main() {
  if [ "$mode" = plan ]; then printf '%s\n' "${runs[@]}"; return 0; fi
  [ -x "$bin/lrkv" ] || { echo "variant_study: no $bin/lrkv (build first: cmake --build build -j2)" >&2; return 2; }
  "$bin/lrkv" prepare-data --corpus=brown --out="$data" >/dev/null
  if [ "$mode" = verify ]; then verify; return; fi
  mkdir -p "$study"
  study_main
}
main; exit $?
