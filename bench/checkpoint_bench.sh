#!/usr/bin/env bash
# Checkpoint throughput against the disk's own: saves a ~30M-parameter LRKV model's checkpoints
# (parameters + AdamW moments, fp32) from 2 ranks (tp2; then dp2 + ZeRO-1), measures the save
# (the training stall, `checkpoint_seconds`) and the load on resume, each in MB/s, next to the
# disk's sequential write (dd, fsync at the end) and read (O_DIRECT) throughput measured in the
# same run on the same file system. Writes bench/results/checkpoint_cpu.json.
#   bench/checkpoint_bench.sh [WORK_DIR (default runs/checkpoint_bench)]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-runs/checkpoint_bench}"
[ -x build/bin/lrkv ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null; cmake --build build -j2 --target lrkv lrkv-prepare-data; }
[ -f data_out/brown/train.bin ] || build/bin/lrkv prepare-data --corpus=brown --out=data_out/brown
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$work"; mkdir -p "$work"

# The disk: 512 MiB written sequentially and fsynced, then read back bypassing the page cache.
disk_write=$(dd if=/dev/zero of="$work/dd.bin" bs=1M count=512 conv=fsync 2>&1 | grep -o "[0-9.]* [MG]B/s" | tail -1)
disk_read=$(dd if="$work/dd.bin" of=/dev/null bs=1M iflag=direct 2>&1 | grep -o "[0-9.]* [MG]B/s" | tail -1)
rm -f "$work/dd.bin"
echo "disk: write $disk_write, read (O_DIRECT) $disk_read"

model=(--config=configs/brown-tiny-lrkv.textproto --data_dir=data_out/brown --model.d_model=512 --model.n_heads=8
       --model.n_layers=8 --model.d_ff=2048 --model.lrkv_rank=16 --model.seq_len=64 --train.global_batch=4
       --train.eval_every=0 --train.eval_batches=1 --train.peak_flops=1e11 --train.log_every=1)
for layout in "tp2:--tp=2" "dp2_zero1:--dp=2 --zero1"; do
  tag=${layout%%:*}; flags=${layout#*:}
  # shellcheck disable=SC2086
  mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 build/bin/lrkv train "${model[@]}" $flags \
    --steps=3 --save_every=1 --out_dir="$work/$tag" --checkpoint_dir="$work/ck_$tag" --train.keep_checkpoints=5 \
    >"$work/$tag.log" 2>&1
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true  # a cold read when allowed (root)
  # shellcheck disable=SC2086
  mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 build/bin/lrkv train "${model[@]}" $flags \
    --steps=4 --out_dir="$work/$tag-resume" --checkpoint_dir="$work/ck_$tag" --resume \
    >"$work/$tag-resume.log" 2>&1
  grep "resumed from" "$work/$tag-resume.log"
done
/usr/bin/python3 - "$work" "$disk_write" "$disk_read" <<'PY'
import json, re, sys
work, disk_write, disk_read = sys.argv[1:]
def mbps(text):
    value, unit = text.split()
    return float(value) * (1000 if unit.startswith("G") else 1)
out = {"disk_sequential_write_MBps": mbps(disk_write), "disk_sequential_read_direct_MBps": mbps(disk_read), "runs": []}
for tag in ("tp2", "dp2_zero1"):
    rows = [json.loads(l) for l in open(f"{work}/{tag}/metrics.jsonl")]
    saves = [r for r in rows if "checkpoint_seconds" in r]
    step = sorted(r["step_time_s"] for r in saves)[len(saves) // 2]  # the step itself, save excluded
    mb = saves[-1]["checkpoint_bytes"] / 1e6
    save_s = sorted(r["checkpoint_seconds"] for r in saves)[len(saves) // 2]
    m = re.search(r"read ([\d.]+) MB in ([\d.]+) s", open(f"{work}/{tag}-resume.log").read())
    load_mb, load_s = float(m.group(1)), float(m.group(2))
    run = {"layout": tag, "checkpoint_MB": round(mb, 1), "save_seconds_median": round(save_s, 3),
           "save_MBps": round(mb / save_s, 1), "load_seconds": load_s, "load_MBps": round(load_mb / load_s, 1),
           "train_step_seconds_without_save": round(step, 3), "stall_per_save_seconds": round(save_s, 3)}
    out["runs"].append(run)
    print(run)
json.dump(out, open("bench/results/checkpoint_cpu.json", "w"), indent=1)
print(f"disk write {out['disk_sequential_write_MBps']} MB/s, read {out['disk_sequential_read_direct_MBps']} MB/s")
PY
