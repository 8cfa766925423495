# Shared by the integration scripts:  . "$(dirname "$0")/lib.sh"; setup NAME "$@"
#   setup NAME BIN SRC WORK [MPIRUN...]  bin, src, work and mpirun (an array) from the arguments, the
#                                 data prepared (below), and $w = WORK/NAME, emptied
#   prepare_brown                 the Brown corpus at vocabulary 2048 in $work/../brown or $work/brown
#   small_train                   the arguments of a small, fast `lrkv train` on it (an array)
#   ok MSG / fail MSG             bookkeeping; finish NAME prints the verdict and sets the exit status
#   expect_error WHAT TEXT -- CMD the command fails (non-zero) and prints TEXT
#   wait_for FILE PATTERN [S]     waits up to S seconds (default 60) for a line matching PATTERN
#   metrics_steps FILE            the steps recorded in a metrics.jsonl, space-separated
#   train_run TAG NP ARGS...      `lrkv train ARGS` on NP ranks (mpirun when NP > 1) into $w/TAG, its
#                                 parameters in $w/TAG/params, its output in $w/TAG.log; fail on error
#   at_step5 ROOT COPY            COPY: a checkpoint root holding ROOT's step 5 as its latest
failures=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
finish() {
  if [ "$failures" -eq 0 ]; then echo "$1: all passed"; exit 0; fi
  echo "$1: $failures failed"; exit 1
}

setup() {
  local name="$1"
  bin="$2"; src="$3"; work="$4"; shift 4
  mpirun=("$@")
  prepare_brown
  w="$work/$name"
  rm -rf "$w"; mkdir -p "$w"
}

prepare_brown() {
  data="$work/brown"
  "$bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null || { echo "prepare-data failed"; exit 1; }
  small_train=(--config="$src/configs/brown-tiny-lrkv.textproto" --data_dir="$data" --model.vocab_size=2048
               --model.n_layers=2 --model.seq_len=32 --train.global_batch=8 --train.eval_batches=1
               --train.peak_flops=1e9 --train.log_every=1 --train.warmup_steps=60)
}

expect_error() {
  local what="$1" expected="$2"; shift 3
  local output status
  output="$("$@" 2>&1)"; status=$?
  if [ $status -eq 0 ] || ! grep -qF -- "$expected" <<<"$output"; then
    fail "$what: exit $status, expected '$expected' in:"; echo "$output" | tail -4
  else
    ok "$what -> $(grep -F -- "$expected" <<<"$output" | head -1 | cut -c1-220)"
  fi
}

wait_for() {
  local file="$1" pattern="$2" tries=$(( ${3:-60} * 10 ))
  for _ in $(seq "$tries"); do grep -qE -- "$pattern" "$file" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

metrics_steps() {
  /usr/bin/python3 -c "import json,sys; print(' '.join(str(json.loads(l)['step']) for l in open(sys.argv[1])))" "$1"
}

train_run() {
  local tag="$1" np="$2"; shift 2
  local cmd=("$bin/lrkv")
  [ "$np" -gt 1 ] && cmd=("${mpirun[@]}" -np "$np" "$bin/lrkv")
  "${cmd[@]}" train "$@" --out_dir="$w/$tag" --train.save_params_dir="$w/$tag/params" >"$w/$tag.log" 2>&1 \
    || { fail "$tag (exit $?)"; tail -5 "$w/$tag.log"; }
}

at_step5() {
  rm -rf "$2"; mkdir -p "$2"; cp -r "$1/step_00000005" "$2/"; echo step_00000005 >"$2/latest"
}
