#!/bin/bash
# The memory model against real runs: for several variants, layouts, recompute modes and both
# precisions (FP32, BF16), the peak
# resident memory of the largest rank of `lrkv train` (rss_peak_bytes in metrics.jsonl, from
# getrusage) is within 10% of `lrkv memory`'s peak_bytes, its live tensors' peak (allocated) within
# 2% and its allocator's (reserved: the tensors and its cache of freed blocks) within 15% of theirs
# (the model counts one cached block, the logits' gradient; a cache by size class keeps a few more). A job predicted not to fit stops
# at start-up on every rank, with the prediction and the recompute mode that fits.
# usage: memory.sh BIN SRC WORK MPIRUN...
. "$(dirname "$0")/lib.sh"
setup memory "$@"

base=(--data_dir="$data" --model.vocab_size=2048 --model.seq_len=512 --steps=2 --train.eval_batches=1
      --train.peak_flops=1e9 --train.log_every=1 --train.warmup_steps=60)

check() {  # TAG NP CONFIG [ARGS...]: train, then compare with the prediction for the same arguments
  local tag="$1" np="$2" config="$3"; shift 3
  local args=(--config="$src/configs/$config" "${base[@]}" "$@")
  local layout=()
  for a in "$@"; do
    case "$a" in --tp=*) layout+=("tp${a#--tp=}") ;; --pp=*) layout+=("pp${a#--pp=}") ;; --dp=*) layout+=("dp${a#--dp=}") ;; esac
  done
  local own=() a
  for a in "${args[@]}"; do  # lrkv memory takes the config overrides, not train's own flags
    case "$a" in --model.*|--train.*|--config=*|--parallel.*) own+=("$a") ;; --zero1) own+=(--zero1=true) ;; esac
  done
  local layout_arg=(); [ ${#layout[@]} -gt 0 ] && layout_arg=(--layout="$(IFS=,; echo "${layout[*]}")")
  "$bin/lrkv" memory "${own[@]}" "${layout_arg[@]}" --format=json >"$w/$tag.memory.json" 2>"$w/$tag.memory.err" ||
    { fail "$tag: lrkv memory"; cat "$w/$tag.memory.err"; return; }
  if [ "$np" = 1 ]; then "$bin/lrkv" train "${args[@]}" --out_dir="$w/$tag" >"$w/$tag.log" 2>&1
  else "${mpirun[@]}" -np "$np" "$bin/lrkv" train "${args[@]}" --out_dir="$w/$tag" >"$w/$tag.log" 2>&1; fi ||
    { fail "$tag: train"; tail -5 "$w/$tag.log"; return; }
  /usr/bin/python3 - "$w" "$tag" <<'PY' && ok "$(cat "$w/$tag.verdict")" || fail "$(cat "$w/$tag.verdict")"
import json, sys
w, tag = sys.argv[1], sys.argv[2]
predicted = json.load(open(f"{w}/{tag}.memory.json"))
last = [json.loads(l) for l in open(f"{w}/{tag}/metrics.jsonl")][-1]
ranks = predicted["ranks"]
pairs = [("resident", last["rss_peak_bytes"], predicted["peak_bytes"], 0.10),
         ("reserved", last["memory_peak_reserved_bytes"], max(r["reserved_peak_bytes"] for r in ranks), 0.15),
         ("allocated", last["memory_peak_allocated_bytes"], max(r["allocated_peak_bytes"] for r in ranks), 0.02)]
mib = 1 << 20
good = all(abs(got / want - 1) <= tol for _, got, want, tol in pairs)
verdict = f"{tag}: " + "; ".join(f"{name} {got / mib:.0f} MiB, predicted {want / mib:.0f} ({got / want - 1:+.1%})"
                                 for name, got, want, _ in pairs)
open(f"{w}/{tag}.verdict", "w").write(verdict)
sys.exit(0 if good else 1)
PY
}

check lrkv-none 1 brown-tiny-lrkv.textproto --train.global_batch=8 --train.recompute=NONE
check lrkv-block 1 brown-tiny-lrkv.textproto --train.global_batch=8 --train.recompute=BLOCK
check mha-tp2-attention 2 brown-tiny-mha.textproto --tp=2 --train.global_batch=8 --train.recompute=ATTENTION
check mla-pp2-dp2-zero1 4 brown-tiny-mla.textproto --pp=2 --dp=2 --zero1 --train.global_batch=16 --train.micro_batch=4
check mlra-tp2-swiglu 2 brown-tiny-mlra.textproto --tp=2 --model.activation=SWIGLU --train.global_batch=4
check lrkv-bf16 1 brown-tiny-lrkv.textproto --train.global_batch=8 --train.precision=BF16
check mha-tp2-bf16-block 2 brown-tiny-mha.textproto --tp=2 --train.global_batch=8 --train.precision=BF16 --train.recompute=BLOCK

# --- refused at start-up, on every rank, with the prediction and what would fit --------------------
# 8 layers at T 4096, 8 sequences: about 3.4 GiB without recomputation, 1.3 GiB with BLOCK; the node
# is made to have 2 GiB available (a test hook), so the verdict does not depend on this machine.
big=(--config="$src/configs/brown-tiny-lrkv.textproto" "${base[@]}" --model.seq_len=4096 --model.n_layers=8
     --train.global_batch=8 --out_dir="$w/big")
export LRKV_TEST_HOOKS=1 LRKV_TEST_MEMORY_AVAILABLE=$((2 << 30))
t0=$SECONDS
expect_error "a job predicted not to fit" "this job does not fit in memory: needs 3.4 GiB per rank" -- \
  "$bin/lrkv" train "${big[@]}"
expect_error "the refusal names the recompute mode that fits" "2.0 GiB available: try --train.recompute=BLOCK (predicted 1.3 GiB per rank)" -- \
  "$bin/lrkv" train "${big[@]}"
out="$("${mpirun[@]}" -np 2 "$bin/lrkv" train "${big[@]}" --dp=2 2>&1)"; status=$?
[ $status -ne 0 ] && [ "$(grep -c "2 rank(s) on this node need" <<<"$out")" -ge 1 ] && ok "refused under mpirun (exit $status)" ||
  { fail "mpirun refusal: exit $status"; tail -3 <<<"$out"; }
[ $((SECONDS - t0)) -le 30 ] && ok "refused in $((SECONDS - t0)) s, before allocating" || fail "refusals took $((SECONDS - t0)) s"
[ ! -e "$w/big/metrics.jsonl" ] && ok "nothing written by a refused job" || fail "a refused job wrote metrics"
# A small job on a node said to have 100 MiB: refused, then started anyway when told to.
export LRKV_TEST_MEMORY_AVAILABLE=$((100 << 20))
expect_error "a small job on a node with 100 MiB" "this job does not fit in memory" -- \
  "$bin/lrkv" train "${small_train[@]}" --steps=1 --out_dir="$w/small"
if "$bin/lrkv" train "${small_train[@]}" --steps=1 --out_dir="$w/small" --train.ignore_memory_check=true >"$w/small.log" 2>&1 &&
   [ "$(metrics_steps "$w/small/metrics.jsonl")" = 1 ]; then ok "--train.ignore_memory_check=true starts it anyway"
else fail "--train.ignore_memory_check"; tail -3 "$w/small.log"; fi
unset LRKV_TEST_HOOKS LRKV_TEST_MEMORY_AVAILABLE

# --- lrkv memory's own bad input ---------------------------------------------------------------------
mem=("$bin/lrkv" memory --config="$src/configs/brown-tiny-lrkv.textproto")
expect_error "a layout the heads do not split over" "parallel.tp (3) does not divide model.n_heads (4)" -- "${mem[@]}" --layout=tp3
expect_error "a size with no unit" "'80XB': unknown unit" -- "${mem[@]}" --gpu_memory=80XB
expect_error "--search without a device" "--search needs the device's memory" -- "${mem[@]}" --search=4
expect_error "an unknown device" "unknown device 'b300' for the memory" -- "${mem[@]}" --peak=b300
expect_error "an unknown argument" "unknown argument '--bogus=1'" -- "${mem[@]}" --bogus=1
out="$("${mem[@]}" --model.vocab_size=2048 --peak=h100 --search=4 --format=json)" &&
  [ "$(grep -c '"fits_with":"NONE"' <<<"$out")" -eq 6 ] && ok "--search=4: the 6 layouts of 4 ranks the heads and layers allow, each fits" ||
  { fail "--search=4"; echo "$out"; }
# `lrkv flops --memory` reports the same model, category by category, for each precision.
for precision in FP32 BF16; do
  flags=(--config="$src/configs/paper/6.3b-lrkv.textproto" --layout=tp4,pp2,dp2 --train.global_batch=8
         --train.recompute=BLOCK --train.precision=$precision)
  if "$bin/lrkv" memory "${flags[@]}" --zero1=true --format=json >"$w/mem-$precision.json" &&
     "$bin/lrkv" flops "${flags[@]}" --parallel.zero1=true --memory --format=json >"$w/flops-$precision.json" &&
     /usr/bin/python3 - "$w/mem-$precision.json" "$w/flops-$precision.json" <<'PY'
import json, sys
mem, flops = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
largest = max(mem["ranks"], key=lambda r: r["peak_bytes"])
assert flops["memory_peak_bytes_per_rank"] == mem["peak_bytes"] == largest["peak_bytes"], (flops, mem)
for key, value in largest.items():
    if key.endswith("_bytes"):
        assert flops[f"memory_{key[:-6]}_bytes_per_rank"] == value, key
print(f"{mem['precision']}: {mem['peak_bytes'] / 2**30:.2f} GiB per rank")
PY
  then ok "lrkv flops --memory equals lrkv memory ($precision)"; else fail "lrkv flops --memory ($precision)"; fi
done
/usr/bin/python3 - "$w/flops-FP32.json" "$w/flops-BF16.json" <<'PY' && ok "$(cat "$w/bf16.verdict")" || fail "BF16 against FP32"
import json, sys
fp32, bf16 = (json.load(open(f)) for f in sys.argv[1:3])
k = lambda c: f"memory_{c}_bytes_per_rank"
params = bf16[k("parameters")] / fp32[k("parameters")]  # the values the passes read: 2 bytes, not 4
# fp32 masters of the rank's ZeRO-1 shard only: half the fp32 values' bytes at dp2
masters = bf16[k("master_weights")] == fp32[k("parameters")] / 2 and fp32[k("master_weights")] == 0
acts = bf16[k("activations")] / fp32[k("activations")]  # 2 bytes but the fp32 statistics
same = masters and all(bf16[k(c)] == fp32[k(c)] for c in ("gradients", "optimizer_state", "communication"))
open(sys.argv[1].rsplit("/", 1)[0] + "/bf16.verdict", "w").write(
    f"6.3B tp4 pp2 dp2 BLOCK: BF16/FP32 parameters {params:.3f}, activations {acts:.3f}; BF16's fp32 masters "
    f"half FP32's values (their ZeRO-1 shard), gradients, moments and buffers equal FP32's: {same}")
sys.exit(0 if params == 0.5 and 0.5 <= acts < 0.52 and same else 1)
PY
finish memory
