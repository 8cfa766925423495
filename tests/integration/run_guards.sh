#!/usr/bin/env bash
# What the hostile-user tests found (issue: reliability), one case each, in one process:
#  - a run without --resume refuses a checkpoint directory holding another run's checkpoints
#    (directory untouched); --overwrite_checkpoints replaces them;
#  - two jobs on one --out_dir or --checkpoint_dir: the second fails naming the first's host and
#    pid; the lock of a job killed with -9 does not block the next;
#  - `latest` empty, missing, a directory or garbage: resume from the newest complete checkpoint,
#    saying so; `latest` pointing outside the directory is refused;
#  - metrics.jsonl missing the record of the checkpoint's step (kill -9 between commit and record):
#    resume restores it from the checkpoint;
#  - --steps at or below the checkpoint's step, another tokenizer's data with the same vocabulary
#    size, --train.eval_batches=-1, negative flags, a directory as config, a model that cannot fit:
#    each refused before any training, naming the problem.
#   run_guards.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
setup run-guards "$@"
train=("$bin/lrkv" train "${small_train[@]}")

# --- another run's checkpoints --------------------------------------------------------------------
"${train[@]}" --steps=3 --save_every=1 --out_dir="$w/first" --checkpoint_dir="$w/ck" >"$w/first.log" 2>&1 ||
  { cat "$w/first.log"; exit 1; }
ckfiles() { (cd "$1" && find . -type f ! -name .lrkv.lock | sort | xargs md5sum); }  # the job lock aside
before="$(ckfiles "$w/ck")"
expect_error "new run into another run's checkpoints" \
  "checkpoint directory $w/ck already holds another run's 3 checkpoint(s): step_00000001, step_00000002, step_00000003: pass --resume" \
  -- "${train[@]}" --steps=2 --out_dir="$w/second" --checkpoint_dir="$w/ck"
[ "$before" = "$(ckfiles "$w/ck")" ] && ok "the refused run left $w/ck untouched" ||
  fail "the refused run changed $w/ck"
if "${train[@]}" --steps=2 --out_dir="$w/second" --checkpoint_dir="$w/ck" --overwrite_checkpoints >"$w/ow.log" 2>&1 &&
   grep -q "removed 3 checkpoint(s) of the previous run" "$w/ow.log" && [ "$(cat "$w/ck/latest")" = step_00000002 ] &&
   [ "$(ls "$w/ck" | grep -c step_)" = 1 ]; then
  ok "--overwrite_checkpoints replaces them (latest -> step_00000002, the old steps gone)"
else
  fail "--overwrite_checkpoints"; tail -3 "$w/ow.log"
fi

# --- one job per directory ------------------------------------------------------------------------
"${train[@]}" --steps=100000 --out_dir="$w/busy" --checkpoint_dir="$w/busy-ck" >"$w/busy.log" 2>&1 &
busy=$!
wait_for "$w/busy.log" "^step +2/" || { fail "the first job never started"; cat "$w/busy.log"; }
expect_error "second job on the same --out_dir" "run directory $w/busy is in use by another lrkv job (host $(hostname), pid $busy" \
  -- "${train[@]}" --steps=2 --out_dir="$w/busy"
expect_error "second job on the same --checkpoint_dir" "checkpoint directory $w/busy-ck is in use by another lrkv job (host $(hostname), pid $busy" \
  -- "${train[@]}" --steps=2 --out_dir="$w/other" --checkpoint_dir="$w/busy-ck" --resume
kill -9 $busy; wait $busy 2>/dev/null
if "${train[@]}" --steps=2 --out_dir="$w/busy" >"$w/after.log" 2>&1; then
  ok "the lock of a job killed with -9 does not block the next job"
else
  fail "stale lock blocked"; tail -3 "$w/after.log"
fi

# --- a damaged `latest` ---------------------------------------------------------------------------
"${train[@]}" --steps=4 --save_every=1 --out_dir="$w/base" --checkpoint_dir="$w/lt" >"$w/base.log" 2>&1 || cat "$w/base.log"
for case in empty missing directory garbage; do
  ck="$w/lt-$case"; rm -rf "$ck"; cp -r "$w/lt" "$ck"; rm -f "$ck/.lrkv.lock"
  case $case in
    empty) : >"$ck/latest" ;;
    missing) rm "$ck/latest" ;;
    directory) rm "$ck/latest"; mkdir "$ck/latest" ;;
    garbage) printf '\x00\xff\x13junk' >"$ck/latest" ;;
  esac
  out="$("${train[@]}" --steps=5 --out_dir="$w/lt-$case-run" --checkpoint_dir="$ck" --resume 2>&1)"; status=$?
  if [ $status -eq 0 ] && grep -q "using the newest complete checkpoint, step_00000004" <<<"$out" &&
     grep -q "resumed from $ck/step_00000004: step 4" <<<"$out" && [ "$(metrics_steps "$w/lt-$case-run/metrics.jsonl")" = 5 ]; then
    ok "latest $case: $(grep -o 'warning: .*' <<<"$out" | head -1)"
  else
    fail "latest $case: exit $status"; echo "$out" | tail -4
  fi
done
ck="$w/lt-outside"; rm -rf "$ck"; cp -r "$w/lt" "$ck"; rm -f "$ck/.lrkv.lock"; echo "../lt/step_00000003" >"$ck/latest"
expect_error "latest pointing outside the directory" "$ck/latest points outside the checkpoint directory ('../lt/step_00000003')" \
  -- "${train[@]}" --steps=5 --out_dir="$w/lt-outside-run" --checkpoint_dir="$ck" --resume

# --- the checkpoint's step missing from metrics.jsonl ---------------------------------------------
# The state kill -9 leaves between committing checkpoint 4 and writing step 4's record.
cp -r "$w/base" "$w/repair"; rm -f "$w/repair/.lrkv.lock"
record4="$(sed -n 4p "$w/base/metrics.jsonl")"
sed -i 4d "$w/repair/metrics.jsonl"
cp -r "$w/lt" "$w/repair-ck"; rm -f "$w/repair-ck/.lrkv.lock"
out="$("${train[@]}" --steps=6 --out_dir="$w/repair" --checkpoint_dir="$w/repair-ck" --resume 2>&1)"; status=$?
restored="$(sed -n 4p "$w/repair/metrics.jsonl")"
if [ $status -eq 0 ] && grep -q "step 4's record restored from the checkpoint" <<<"$out" &&
   [ "$(metrics_steps "$w/repair/metrics.jsonl")" = "1 2 3 4 5 6" ] &&
   /usr/bin/python3 -c "import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); sys.exit(0 if a['loss']==b['loss'] and a['step']==b['step']==4 else 1)" "$record4" "$restored"; then
  ok "metrics.jsonl without the checkpoint's step: the record is restored (steps 1-6, step 4's loss as first written)"
else
  fail "metrics repair: exit $status, steps $(metrics_steps "$w/repair/metrics.jsonl")"; echo "$out" | tail -3
fi

# --- refused before training ----------------------------------------------------------------------
cp "$w/base/summary.json" "$w/summary-before.json"
expect_error "--steps at the checkpoint's step" "is at step 4 and train.steps is 4: nothing left to train; raise --steps" \
  -- "${train[@]}" --steps=4 --out_dir="$w/base" --checkpoint_dir="$w/lt" --resume
expect_error "--steps below the checkpoint's step" "is at step 4 and train.steps is 2" \
  -- "${train[@]}" --steps=2 --out_dir="$w/base" --checkpoint_dir="$w/lt" --resume
cmp -s "$w/base/summary.json" "$w/summary-before.json" && ok "summary.json kept" || fail "summary.json overwritten"
other="$work/run-guards-other-tokenizer"
"$bin/lrkv" prepare-data --corpus=brown --out="$other" --vocab_size=2048 --split_seed=99 >/dev/null || fail "prepare other data"
expect_error "resume onto another tokenizer's data (same vocabulary size)" "was trained on data of another tokenizer" \
  -- "${train[@]}" --steps=6 --data_dir="$other" --out_dir="$w/tok" --checkpoint_dir="$w/lt" --resume
expect_error "--train.eval_batches=-1" "train.eval_batches must be in [1, 1e+06], got -1" \
  -- "${train[@]}" --steps=2 --out_dir="$w/x" --train.eval_batches=-1
expect_error "--steps=-5" "train.steps must be in [1, 1e+12], got -5" -- "${train[@]}" --steps=-5 --out_dir="$w/x"
expect_error "--dp=-1" "every dimension must be >= 1" -- "${train[@]}" --dp=-1 --out_dir="$w/x"
expect_error "--tp=-2" "every dimension must be >= 1" -- "${train[@]}" --tp=-2 --out_dir="$w/x"
expect_error "--micro_batches=-1" "--micro_batches must be positive, got -1" -- "${train[@]}" --micro_batches=-1 --out_dir="$w/x"
expect_error "--train.beta1=nan" "train.beta1 must be in [0, 1), got nan" -- "${train[@]}" --train.beta1=nan --out_dir="$w/x"
expect_error "--train.peak_flops=-1" "train.peak_flops must be in [0, 1e+22], got -1" -- "${train[@]}" --train.peak_flops=-1 --out_dir="$w/x"
expect_error "--model.activation=ACTIVATION_UNSPECIFIED" "model.activation must be set: one of GELU, RELU_SQUARED, SWIGLU" \
  -- "${train[@]}" --model.activation=ACTIVATION_UNSPECIFIED --out_dir="$w/x"
expect_error "a directory as --config" "config $src/configs is a directory, not a config file" \
  -- "$bin/lrkv" train --config="$src/configs"
t0=$SECONDS
expect_error "a model that cannot fit in memory" "this job does not fit in memory: needs" \
  -- "${train[@]}" --model.n_layers=4000 --model.d_model=1024 --out_dir="$w/x"
[ $((SECONDS - t0)) -le 10 ] && ok "refused in $((SECONDS - t0)) s, before allocating" || fail "memory refusal took $((SECONDS - t0)) s"
# --- a checkpoint written before the formats' later additions (tests/fixtures/README.md) ---------------
old="$w/old-ck"; cp -r "$src/tests/fixtures/checkpoint_before_issue14" "$old"
old_args=(--config="$src/configs/brown-tiny-lrkv.textproto" --data_dir="$data" --model.vocab_size=2048 --model.n_layers=1
          --model.d_model=16 --model.n_heads=2 --model.lrkv_rank=2 --model.d_ff=32 --model.seq_len=16
          --train.global_batch=4 --train.eval_batches=1 --train.peak_flops=1e9 --train.warmup_steps=60)
out="$("$bin/lrkv" train "${old_args[@]}" --steps=4 --out_dir="$w/old-run" --checkpoint_dir="$old" --resume 2>&1)"; status=$?
if [ $status -eq 0 ] && grep -q "resumed from $old/step_00000002: step 2" <<<"$out" &&
   [ "$(metrics_steps "$w/old-run/metrics.jsonl")" = "3 4" ] && [ "$(cat "$old/latest")" = step_00000004 ] &&
   "$bin/lrkv" export --checkpoint="$src/tests/fixtures/checkpoint_before_issue14" --out="$w/old.safetensors" >/dev/null 2>&1; then
  ok "a checkpoint written by lrkv before this work resumes (steps 3-4) and exports"
else
  fail "old checkpoint: exit $status"; echo "$out" | tail -3
fi
finish run_guards
