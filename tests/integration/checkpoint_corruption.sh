#!/usr/bin/env bash
# Every kind of damaged or mismatched checkpoint is refused on resume, before any tensor is used,
# on every rank (2 ranks here), with one message naming the file and tensor, a non-zero exit, and
# the checkpoint directory left exactly as it was:
#   missing shard, truncated shard, flipped byte in a shard (CRC32C), corrupted manifest, unknown
#   manifest version, another model config, another vocabulary, an unwritable checkpoint directory.
#   checkpoint_corruption.sh BUILD_BIN_DIR SOURCE_DIR WORK_DIR MPIRUN...
set -uo pipefail
. "$(dirname "$0")/lib.sh"
setup ckpt-corruption "$@"
common=(--config="$src/configs/brown-tiny-lrkv.textproto" --model.n_layers=2 --model.seq_len=32
        --train.global_batch=8 --train.eval_batches=1 --train.peak_flops=1e9)
"${mpirun[@]}" -np 2 "$bin/lrkv" train "${common[@]}" --data_dir="$data" --model.vocab_size=2048 --tp=2 \
  --steps=2 --out_dir="$w/run" --checkpoint_dir="$w/good" >"$w/good.log" 2>&1 || { cat "$w/good.log"; exit 1; }
step=step_00000002
# expect CASE EXPECTED DAMAGE_COMMAND [TRAIN FLAGS...]: damages a fresh copy, resumes on 2 ranks.
expect() {
  local what="$1" expected="$2" damage="$3"; shift 3
  local ck="$w/$what" flags=("$@")
  rm -rf "$ck"; cp -r "$w/good" "$ck"
  (cd "$ck/$step" && eval "$damage")
  local before after out status ranks
  # (the job's lock file, .lrkv.lock, is not part of the checkpoints)
  before="$(cd "$ck" && find . -type f ! -name .lrkv.lock -exec md5sum {} + | sort)"
  [ ${#flags[@]} -gt 0 ] || flags=(--data_dir="$data" --model.vocab_size=2048)
  out="$("${mpirun[@]}" -np 2 "$bin/lrkv" train "${common[@]}" "${flags[@]}" --tp=2 --steps=4 \
         --out_dir="$w/$what-run" --checkpoint_dir="$ck" --resume 2>&1)"; status=$?
  after="$(cd "$ck" && find . -type f ! -name .lrkv.lock -exec md5sum {} + | sort)"
  ranks=$(grep -F -- "$expected" <<<"$out" | grep -c "error:")
  if [ $status -eq 0 ] || [ "$ranks" -ne 2 ] || [ "$before" != "$after" ]; then
    echo "FAIL: $what: exit $status, '$expected' on $ranks of 2 ranks, directory $([ "$before" == "$after" ] && echo unchanged || echo CHANGED):"
    echo "$out" | grep -v "^  node" | tail -4; failures=$((failures + 1))
  else
    echo "ok: $what -> $(grep -F -- "$expected" <<<"$out" | head -1 | cut -c1-200)"
  fi
}
expect missing_shard "checkpoint shard $w/missing_shard/$step/shard_00001.bin is missing (tensor param/" \
  "rm shard_00001.bin"
expect truncated_shard "shard_00000.bin is truncated" "truncate -s 1000 shard_00000.bin"
expect flipped_byte "shard_00001.bin: CRC32C mismatch in tensor param/layers.0.attn.wq" \
  "printf '\\xff' | dd of=shard_00001.bin bs=1 seek=540000 conv=notrunc status=none"
expect corrupt_manifest "manifest $w/corrupt_manifest/$step/manifest.pb is corrupted (CRC32C mismatch)" \
  "printf '\\x00' | dd of=manifest.pb bs=1 seek=200 conv=notrunc status=none"
# Version 2 with a valid CRC: the payload starts with field 1 (version), bytes 08 01.
expect unknown_version "has version 2; this build reads version 1" \
  "/usr/bin/python3 -c \"
import struct
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8): c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
    return c ^ 0xFFFFFFFF
m = bytearray(open('manifest.pb', 'rb').read()); assert m[12:14] == b'\\\\x08\\\\x01'; m[13] = 2
m[8:12] = struct.pack('<I', crc32c(bytes(m[12:]))); open('manifest.pb', 'wb').write(bytes(m))\""
expect other_model "was saved from another model; differences (checkpoint -> this run): modified: d_ff: 512 -> 256" ":" \
  --data_dir="$data" --model.vocab_size=2048 --model.d_ff=256
"$bin/lrkv" prepare-data --corpus=brown --out="$w/brown1024" --vocab_size=1024 >/dev/null || exit 1
expect other_vocabulary "modified: vocab_size: 2048 -> 1024" ":" --data_dir="$w/brown1024" --model.vocab_size=1024
mkdir -p "$w/readonly"; chmod 500 "$w/readonly"
if [ "$(id -u)" -eq 0 ]; then  # root writes anywhere: make the directory a file instead
  rm -rf "$w/readonly"; touch "$w/readonly"
fi
out="$("${mpirun[@]}" -np 2 "$bin/lrkv" train "${common[@]}" --data_dir="$data" --model.vocab_size=2048 --tp=2 \
       --steps=2 --out_dir="$w/ro-run" --checkpoint_dir="$w/readonly/ck" 2>&1)"; status=$?
if [ $status -ne 0 ] && [ "$(grep -c "checkpoint directory $w/readonly/ck is not writable" <<<"$out")" -eq 2 ] &&
   ! grep -q "^step" <<<"$out"; then
  echo "ok: unwritable checkpoint directory refused before training on both ranks"
else
  echo "FAIL: unwritable checkpoint directory: exit $status"; echo "$out" | tail -3; failures=$((failures + 1))
fi
[ $failures -eq 0 ]
