#!/usr/bin/env bash
# lrkv export / lrkv import end to end, for LRKV (one process) and MLA with untied embeddings
# (trained under tp2, so the export gathers tensor-parallel pieces):
#  - export the checkpoint of a short run; the file's tensors equal the parameters the run ended
#    with (train.save_params_dir), bit for bit;
#  - the PyTorch reference (tests/reference/torch_reference.py), given the file through the test's
#    own safetensors reader (export_check.py) and FILE.config.json, computes the logits that lrkv
#    computes with the same weights (tests/reference/dump_case --params) within 1e-4; the full
#    reference comparison (loss, every gradient) passes on them too;
#  - import the file back: re-exporting the imported checkpoint gives the same bytes, and training
#    resumed from it (1 step at lr 1e-30, which leaves the weights as they are) evaluates to the
#    validation loss the original run ended with;
#  - bad inputs give errors that name the problem: a truncated file, a tensor of the wrong shape or
#    dtype, an extra tensor, another model's config, an occupied checkpoint directory, ...
#   export_import.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR DUMP_CASE_BINARY MPIRUN...
set -euo pipefail
bin="$1"; src="$2"; work="$3"; dump_case="$4"; shift 4
mpirun=("$@")
data="$work/brown"
"$bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null
root="$work/export_import"
rm -rf "$root"; mkdir -p "$root"
check=(/usr/bin/python3 "$src/tests/integration/export_check.py")
failures=0

# expect_error DESCRIPTION EXPECTED_SUBSTRING -- COMMAND...
expect_error() {
  local what="$1" expected="$2"; shift 3
  local output status
  set +e; output="$("$@" 2>&1)"; status=$?; set -e
  if [ $status -eq 0 ] || ! grep -qF -- "$expected" <<<"$output"; then
    echo "FAIL: $what: exit $status, expected '$expected' in:"; echo "$output" | tail -5
    failures=$((failures + 1))
  else
    echo "ok: $what -> $(grep -F -- "$expected" <<<"$output" | head -1)"
  fi
}

small=(--model.vocab_size=2048 --model.n_layers=2 --model.seq_len=32 --train.global_batch=8)
train_args=(--data_dir="$data" --train.eval_batches=2 --train.peak_flops=1e9 --train.log_every=100)
for variant in lrkv mla; do
  cfg="$src/configs/brown-tiny-$variant.textproto"
  run="$root/$variant"
  model=("${small[@]}")
  launch=() layout=() tol=1e-6
  if [ "$variant" = mla ]; then
    model+=(--model.tie_embeddings=false)
    launch=("${mpirun[@]}" -np 2) layout=(--tp=2) tol=1e-5  # evaluated under tp2: another rounding
  fi
  echo "== $variant"
  ${launch[@]+"${launch[@]}"} "$bin/lrkv" train --config="$cfg" "${model[@]}" "${train_args[@]}" --steps=3 \
    ${layout[@]+"${layout[@]}"} --out_dir="$run/train" --checkpoint_dir="$run/ckpt" \
    --train.save_params_dir="$run/params" > "$run.train.log"
  "$bin/lrkv" export --checkpoint="$run/ckpt" --out="$run/model.safetensors"
  test -s "$run/model.config.json"
  "${check[@]}" params "$run/model.safetensors" "$run/params"

  # The same weights through lrkv and through the PyTorch reference.
  "$dump_case" --params="$run/model.safetensors" --out="$run/case"
  "${check[@]}" logits "$run/model.safetensors" "$run/case" --tol 1e-4
  /usr/bin/python3 "$src/tests/reference/compare_case.py" "$run/case" --tol 1e-4 | tail -1

  # Back into a checkpoint, and on from there.
  "$bin/lrkv" import --safetensors="$run/model.safetensors" --config="$cfg" "${model[@]}" --out="$run/imported"
  "$bin/lrkv" export --checkpoint="$run/imported/step_00000000" --out="$run/reexported.safetensors"
  "${check[@]}" same "$run/model.safetensors" "$run/reexported.safetensors"
  "$bin/lrkv" train --config="$cfg" "${model[@]}" "${train_args[@]}" --steps=1 --train.lr=1e-30 \
    --train.min_lr=0 --out_dir="$run/resumed" --checkpoint_dir="$run/imported" --resume > "$run.resumed.log"
  test -f "$run/imported/step_00000001/manifest.pb"
  "${check[@]}" val_loss "$run/train/summary.json" "$run/resumed/summary.json" --tol "$tol"
done

echo "== errors"
lrkv_file="$root/lrkv/model.safetensors"
cfg="$src/configs/brown-tiny-lrkv.textproto"
import=("$bin/lrkv" import --config="$cfg" "${small[@]}")
head -c -1000 "$lrkv_file" > "$root/truncated.safetensors"
expect_error "truncated file" "is not a valid safetensors file: truncated: tensor '" -- \
  "${import[@]}" --safetensors="$root/truncated.safetensors" --out="$root/e1"
expect_error "truncated file (dump_case)" "truncated" -- "$dump_case" --params="$root/truncated.safetensors" \
  --out="$root/e1case"
head -c 4 "$lrkv_file" > "$root/tiny.safetensors"
expect_error "file shorter than the header length" "shorter than the 8-byte header length" -- \
  "${import[@]}" --safetensors="$root/tiny.safetensors" --out="$root/e1"
printf 'hello, not a safetensors file' > "$root/text.safetensors"
expect_error "not a safetensors file" "is not a valid safetensors file" -- \
  "${import[@]}" --safetensors="$root/text.safetensors" --out="$root/e1"
"${check[@]}" damage "$lrkv_file" "$root/shape.safetensors" shape
expect_error "a tensor of the wrong shape" \
  "tensor 'layers.0.attn.wq' is F32 [128, 120]; the model's is F32 [128, 128]" -- \
  "${import[@]}" --safetensors="$root/shape.safetensors" --out="$root/e2"
"${check[@]}" damage "$lrkv_file" "$root/dtype.safetensors" dtype
expect_error "another dtype" "tensor 'embed.weight' is F64 [2048, 128]; the model's is F32 [2048, 128]" -- \
  "${import[@]}" --safetensors="$root/dtype.safetensors" --out="$root/e3"
"${check[@]}" damage "$lrkv_file" "$root/extra.safetensors" extra
expect_error "an extra tensor" "unexpected tensor 'layers.0.attn.bogus' (F32 [3, 4]): the model has no such parameter" -- \
  "${import[@]}" --safetensors="$root/extra.safetensors" --out="$root/e4"
expect_error "a config with more layers" "missing tensor 'layers.2.attn.wq' (F32 [128, 128])" -- \
  "${import[@]}" --model.n_layers=3 --safetensors="$lrkv_file" --out="$root/e5"
expect_error "another attention variant's config" "unexpected tensor 'layers.0.attn.uk'" -- \
  "$bin/lrkv" import --config="$src/configs/brown-tiny-mla.textproto" "${small[@]}" --safetensors="$lrkv_file" \
  --out="$root/e6"
expect_error "another rank" "tensor 'layers.0.attn.bk' is F32 [4, 32, 8]; the model's is F32 [4, 32, 4]" -- \
  "${import[@]}" --model.lrkv_rank=4 --safetensors="$lrkv_file" --out="$root/e7"
expect_error "an occupied checkpoint directory" "already holds checkpoints" -- \
  "${import[@]}" --safetensors="$lrkv_file" --out="$root/lrkv/imported"
expect_error "a missing file" "cannot read $root/nope.safetensors" -- \
  "${import[@]}" --safetensors="$root/nope.safetensors" --out="$root/e8"
expect_error "import without --config" "import needs --safetensors, --config and --out" -- \
  "$bin/lrkv" import --safetensors="$lrkv_file" --out="$root/e9"
expect_error "an unknown argument" "unknown argument '--bogus=1'" -- \
  "$bin/lrkv" export --checkpoint="$root/lrkv/ckpt" --out="$root/x.safetensors" --bogus=1
expect_error "export of an empty directory" "no checkpoint in $root/e9" -- \
  "$bin/lrkv" export --checkpoint="$root/e9" --out="$root/x.safetensors"
expect_error "export to a name without .safetensors" "must name a .safetensors file" -- \
  "$bin/lrkv" export --checkpoint="$root/lrkv/ckpt" --out="$root/x.bin"
expect_error "resuming an import with another model" "was saved from another model" -- \
  "$bin/lrkv" train --config="$cfg" "${small[@]}" --model.d_ff=256 "${train_args[@]}" --steps=1 \
  --out_dir="$root/e10" --checkpoint_dir="$root/lrkv/imported" --resume
for e in e1 e2 e3 e4 e5 e6 e7 e8; do
  if [ -e "$root/$e" ]; then echo "FAIL: a failed import left $root/$e behind"; failures=$((failures + 1)); fi
done
if [ $failures -ne 0 ]; then echo "export_import: $failures failures"; exit 1; fi
echo "export_import: all checks passed"
