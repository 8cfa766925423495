#!/usr/bin/env bash
# Bad inputs on the command line give a clear error naming the problem and a non-zero exit status:
# missing config, malformed config, invalid model, unknown override, missing data, truncated and
# corrupted token shards, a shard from another vocabulary.
#   cli_errors.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR
set -uo pipefail
bin="$1"; src="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
. "$src/tests/integration/lib.sh"

cfg="$src/configs/brown-tiny-lrkv.textproto"
expect_error "missing config file" "config file not found or unreadable: $work/nope.textproto" -- \
  "$bin/lrkv" train --config="$work/nope.textproto"
printf 'model {\n  d_model: 64\n  n_heads: four\n}\n' > "$work/bad.textproto"
expect_error "malformed config" "bad.textproto:3:" -- "$bin/lrkv" train --config="$work/bad.textproto"
expect_error "unknown peak device" "unknown device 'tpu9'" -- \
  "$bin/lrkv" train --config="$cfg" --data_dir="$work/../brown" --peak=tpu9
expect_error "heads not dividing d_model" "model.n_heads (5) does not divide model.d_model (128)" -- \
  "$bin/lrkv" train --config="$cfg" --model.n_heads=5
expect_error "unknown override" "unknown config field 'model.n_head'" -- \
  "$bin/lrkv" train --config="$cfg" --model.n_head=4
expect_error "missing data" "$work/no-data/train.bin" -- \
  "$bin/lrkv" train --config="$cfg" --data_dir="$work/no-data"
expect_error "unknown command" "unknown command 'trian'" -- "$bin/lrkv" trian

# Shards: a tiny valid data set made by prepare-data's writer is cheaper to fake by copying a real one.
data="$work/../brown"  # prepared by train_smoke (same WORK parent); make it here if absent
"$bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null
mkdir -p "$work/trunc" "$work/corrupt"
cp "$data/val.bin" "$work/trunc/val.bin"; head -c 1000 "$data/train.bin" > "$work/trunc/train.bin"
expect_error "truncated shard" "truncated" -- \
  "$bin/lrkv" train --config="$cfg" --data_dir="$work/trunc" --model.vocab_size=2048
cp "$data/val.bin" "$work/corrupt/val.bin"; cp "$data/train.bin" "$work/corrupt/train.bin"
printf '\xff\xff' | dd of="$work/corrupt/train.bin" bs=1 seek=5000 conv=notrunc status=none
expect_error "corrupted shard" "crc32c" -- \
  "$bin/lrkv" train --config="$cfg" --data_dir="$work/corrupt" --model.vocab_size=2048
expect_error "vocabulary mismatch" "tokenized with a vocabulary of 2048 but model.vocab_size is 8192" -- \
  "$bin/lrkv" train --config="$cfg" --data_dir="$data"

finish cli_errors
