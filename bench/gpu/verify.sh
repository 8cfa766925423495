#!/usr/bin/env bash
# The GPU verification: everything a GPU machine must show, in ONE call of at most 8 minutes, from
# a bundle prepared on the GPU-less machine. The GPU machine has the driver, CUDA, cuBLASLt, NCCL and
# Python with torch and safetensors, but no MPI, protobuf or Abseil, and nothing can be installed
# there, so the bundle carries every shared library the binaries load (but glibc's and the CUDA
# libraries), Open MPI's runtime for a world of one process (singleton, isolated: no mpirun, no
# daemon), the data, and the CPU's figures to compare against.
#
#   bench/gpu/verify.sh prepare         here: build build-gpu/ (portable flags; VERIFY_REUSE_BUILD=1
#                                       takes BUILD's binaries as they are), fill build-gpu/bundle/
#                                       and pack it into build-gpu/carry/bundle.tar.xz (the carry limit
#                                       is 64 MiB; OpenBLAS alone is 36)
#   bench/gpu/verify.sh device          there, from the repository root: every check, figures to $OUT
#   bench/gpu/verify.sh sandbox         here: `device` with this machine's MPI, protobuf, Abseil,
#                                       OpenBLAS, ... hidden (a mount namespace), on the emulated
#                                       device at small shapes: the bundle needs nothing else, and
#                                       every step of the script runs
#   bench/gpu/verify.sh collect DIR     here: the returned files into bench/results/gpu/
#
# With the session's device tool: command "bench/gpu/verify.sh device", carry ["build-gpu/carry"],
# timeout_s 540; then `collect` the folder the files come back in, and commit it. `device` unpacks
# the carried bundle first when build-gpu/bundle/ is absent.
#
# The device steps, each under its own time limit and all under one deadline (VERIFY_SECONDS, 450),
# in order of importance; each writes its log and figures to $OUT, and bench/gpu/verify_report.py
# turns them into $OUT/summary.json (every figure, each check passed or not, the device's name):
#   1. the cross-backend op test (tests/unit/backend_ops_test.cc: every op, forward and backward,
#      f32 and bf16, against the CPU, outputs poisoned first);
#   2. each variant trained 20 steps on the GPU from the CPU run's seed and data: FP32 losses within
#      1e-4 relative of the CPU's, BF16 within 2%;
#   3. MFU at the 1.3B shape (configs/gpu/1.3b-{mha,lrkv}.textproto, bf16, the largest micro-batch
#      the memory model fits on the GPU) against 989 TFLOP/s and against the measured bf16 GEMM rate;
#   4. the same model in the device's PyTorch (bench/gpu/torch_baseline.py: SDPA, bf16 autocast,
#      eager, then torch.compile if time is left): tokens/s side by side;
#   5. an lrkv safetensors export read by the `safetensors` package, the PyTorch reference's logits
#      on it against lrkv's;
#   6. the CUDA backend's GEMM and attention kernels timed (bench/gpu/gpu_op_bench.cc), for where the
#      time goes; last, again with bf16 attention on the SIMT kernels instead of the tensor-core ones.
# If the op test does not pass bf16 attention (the tensor-core kernels, which had only run under the
# CPU's emulation of CUDA), steps 2 to 6 run with LRKV_CUDA_FLASH_ATTENTION=0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-gpu}
BUNDLE=$BUILD/bundle
PACKED=$BUILD/carry/bundle.tar.xz
VARIANTS=(mha gqa mqa mla lrkv mlra)

# Open MPI components a one-process world loads (ess singleton, pml ob1 over btl self, the
# collectives, shared memory, state and error handling); the transports that need other libraries
# (UCX, OFI, PSM, verbs) are left out and switched off in device().
MPI_PLUGIN_PATTERN='mca_(allocator|bml|btl_self|coll|errmgr|ess_singleton|mpool|op|osc_sm|pmix_isolated|pml_ob1|rcache|reachable|schizo|shmem|state|vprotocol)'
MPI_PLUGIN_DIR=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3

# Shared libraries the binaries (and the Open MPI components) load, without glibc's own and the
# CUDA libraries the GPU machine brings (its driver's libcuda, cuBLAS(Lt), NCCL).
library_closure() {
  ldd "$@" | awk '/=> \// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libmvec|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libcublas|libcublasLt|libnccl)\.so'
}

prepare() {
  # RelWithDebInfo without -g: the root CMakeLists sets -march=native for Release only, and the GPU
  # machine's CPU may lack this machine's vector extensions. No oneDNN (40 MB more to carry): the CPU
  # side of these checks is not timed.
  if [[ -z ${VERIFY_REUSE_BUILD:-} ]]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" \
      -DLRKV_ENABLE_ONEDNN=OFF \
      -DCMAKE_CUDA_FLAGS_RELWITHDEBINFO="-O3 -DNDEBUG" >/dev/null
    cmake --build "$BUILD" -j"${JOBS:-2}" --target lrkv lrkv-prepare-data backend_ops_test gpu_op_bench dump_case
  fi
  rm -rf "$BUNDLE"
  mkdir -p "$BUNDLE"/{bin,lib,openmpi,reference,export}
  cp "$BUILD/bin/lrkv" "$BUILD/bin/backend_ops_test" "$BUILD/bin/gpu_op_bench" "$BUNDLE/bin/"
  strip "$BUNDLE/bin/"*
  find "$MPI_PLUGIN_DIR" -maxdepth 1 -name 'mca_*.so' | grep -E "/$MPI_PLUGIN_PATTERN" | xargs cp -t "$BUNDLE/openmpi/"
  library_closure "$BUNDLE"/bin/* "$BUNDLE"/openmpi/*.so | while read -r lib; do cp -L "$lib" "$BUNDLE/lib/"; done

  # The data, and what the GPU's figures are compared with, made here by the bundle's own binary.
  local lrkv="$BUNDLE/bin/lrkv" work="$BUILD/verify-cpu"
  rm -rf "$work"
  mkdir -p "$work"
  # The Brown corpus at vocabulary 2048: prepared here, or copied from VERIFY_DATA (a prepare-data
  # output of that vocabulary); only what training reads is carried.
  local data=${VERIFY_DATA:-$BUILD/verify-data}
  if [[ -z ${VERIFY_DATA:-} ]]; then "$BUILD/bin/lrkv" prepare-data --corpus=brown --out="$data" --vocab_size=2048 >/dev/null; fi
  mkdir -p "$BUNDLE/data"
  cp "$data"/{train.bin,val.bin,tokenizer.model,tokenizer.vocab,meta.json} "$BUNDLE/data/"
  # The same ids under a header of the 1.3B shape's vocabulary (50304, GPT-2's padded): the MFU runs'
  # data. Only the header's vocabulary field changes; the checksum covers the payload alone.
  cp -r "$BUNDLE/data" "$BUNDLE/data-50304"
  for split in train val; do
    /usr/bin/python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[24:28] = (50304).to_bytes(4, "little"); open(p, "wb").write(b)'       "$BUNDLE/data-50304/$split.bin"
  done
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
  for v in "${VARIANTS[@]}"; do
    for p in FP32 BF16; do
      "$lrkv" train $(variant_args "$v" "$p" "$BUNDLE/data") --device=cpu --out_dir="$work/$v-$p" >"$work/$v-$p.log"
      cp "$work/$v-$p/metrics.jsonl" "$BUNDLE/reference/$v-$p.metrics.jsonl"
    done
  done
  # An export of a short LRKV run, and lrkv's logits on it (tests/reference/dump_case).
  "$lrkv" train $(variant_args lrkv FP32 "$BUNDLE/data") --steps=10 --device=cpu --out_dir="$work/export" \
    --checkpoint_dir="$work/export/ckpt" >"$work/export.log"
  "$lrkv" export --checkpoint="$work/export/ckpt" --out="$BUNDLE/export/model.safetensors" >/dev/null
  "$BUILD/bin/dump_case" --params="$BUNDLE/export/model.safetensors" --out="$BUNDLE/export/case" >/dev/null

  mkdir -p "$(dirname "$PACKED")"
  tar -C "$BUILD" -cf - bundle | xz -T0 -6 >"$PACKED"
  local bytes
  bytes=$(stat -c %s "$PACKED")
  echo "bundle: $BUNDLE ($(du -sm "$BUNDLE" | cut -f1) MiB), packed $PACKED ($((bytes / 1024 / 1024)) MiB; the device tool carries at most 64 MiB)"
  if ((bytes > 64 * 1024 * 1024)); then
    echo "packed bundle too large to carry" >&2
    exit 1
  fi
}

# `lrkv train` arguments of step 2's runs: the variant's demo config, 20 steps, at the data's
# vocabulary, a fixed peak (MFU is step 3's).
variant_args() {  # VARIANT PRECISION DATA_DIR
  echo --config="$ROOT/configs/brown-tiny-$1.textproto" --data_dir="$3" --model.vocab_size=2048 --steps=20 \
    --train.eval_every=10 --train.eval_batches=2 --train.log_every=10 --train.peak_flops=1e12 \
    --train.precision="$2"
}

device() {
  local out=${OUT:?set OUT to the folder whose files come back}
  local dev=${VERIFY_DEVICE:-cuda} deadline=$((SECONDS + ${VERIFY_SECONDS:-450})) python=${PYTHON:-python3}
  # Everything is written to a work folder; the device tool returns only a few files, so $OUT gets
  # summary.json, report.txt, steps.jsonl and verify.tar.gz (all of it), on any way out.
  local work=${VERIFY_WORK:-/tmp/lrkv-verify}
  rm -rf "$work"
  mkdir -p "$work" "$out"
  # (Expanded now: the trap runs after this function's locals are gone.)
  trap "cp '$work'/{summary.json,report.txt,steps.jsonl} '$out/' 2>/dev/null; tar -C '$work' -czf '$out/verify.tar.gz' ." EXIT
  if [[ ! -d $BUNDLE ]]; then
    if command -v xz >/dev/null; then
      tar -C "$BUILD" -xJf "$PACKED"
    else
      "$python" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$PACKED" "$BUILD"
    fi
  fi
  # The bundle's libraries for its own binaries only (Python, torch and Triton keep the system's),
  # then the CUDA libraries wherever the machine keeps them (cuBLASLt in the toolkit; NCCL maybe only
  # in torch's environment).
  local libs=$BUNDLE/lib dir
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    if [[ -d $dir ]]; then libs+=:$dir; fi
  done
  for dir in $(find /usr/local /opt /usr/lib -maxdepth 9 \( -name libnccl.so.2 -o -name libcublasLt.so.13 \) \
    -printf '%h\n' 2>/dev/null | sort -u); do
    libs+=:$dir
  done
  local bundled=(env "LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  # Open MPI as a world of one process, from the bundle's components only.
  export OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_mca_base_component_path=$BUNDLE/openmpi
  export OMPI_MCA_mca_base_component_show_load_errors=0 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self OMPI_MCA_osc=sm
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8} NCCL_DEBUG=${NCCL_DEBUG:-WARN}
  local lrkv=$BUNDLE/bin/lrkv
  : >"$work/steps.jsonl"
  # step NAME SECONDS CMD...: CMD under min(SECONDS, what the deadline leaves), its output in NAME.log,
  # its exit status and time in steps.jsonl; the script goes on whatever happens.
  step() {
    local name=$1 limit=$2 left=$((deadline - SECONDS)) start=$SECONDS rc=0
    shift 2
    ((limit > left)) && limit=$left
    if ((limit < 10)); then
      echo "{\"step\": \"$name\", \"skipped\": \"deadline\"}" >>"$work/steps.jsonl"
      return 0
    fi
    echo "== $name (at most ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >"$work/$name.log" 2>&1 || rc=$?
    echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - start)), \"limit\": $limit}" >>"$work/steps.jsonl"
    tail -n 3 "$work/$name.log"
  }
  step nvidia_smi 20 nvidia-smi
  step ldd 20 "${bundled[@]}" ldd "$lrkv" "$BUNDLE/bin/backend_ops_test" "$BUNDLE/bin/gpu_op_bench"
  if grep "not found" "$work/ldd.log"; then echo "MISSING LIBRARIES (above): the binaries will not start" >&2; fi
  # 1. Every op against the CPU.
  step backend_ops 120 "${bundled[@]}" "$BUNDLE/bin/backend_ops_test" --gtest_output="json:$work/backend_ops_test.json"
  # The tensor-core attention forward (runtime/ops/cuda/flash_attention.cuh) had run only under the
  # CPU's emulation before: if the GPU finds it wrong, the later steps run with it switched off, so
  # that they still measure everything else (and steps.jsonl says so).
  # (No OK line may also mean that an earlier op crashed the test or the step ran out of time: the
  # attention test alone then decides.)
  local attention_ok="OK \] Targets/BackendOps.Attention/cuda_bf16 "
  if [[ $dev == cuda ]] && ! grep -q "$attention_ok" "$work/backend_ops.log"; then
    step backend_ops_attention 60 "${bundled[@]}" "$BUNDLE/bin/backend_ops_test" \
      --gtest_filter=Targets/BackendOps.Attention/cuda_bf16
    if ! grep -q "$attention_ok" "$work/backend_ops_attention.log"; then
      export LRKV_CUDA_FLASH_ATTENTION=0
      echo '{"step": "flash_attention_off", "why": "Attention/cuda_bf16 did not pass"}' >>"$work/steps.jsonl"
    fi
  fi
  # 2. Each variant against the CPU's 20 steps.
  for v in "${VARIANTS[@]}"; do
    for p in FP32 BF16; do
      step "train_$v-$p" 60 "${bundled[@]}" "$lrkv" train $(variant_args "$v" "$p" "$BUNDLE/data") --device="$dev" \
        --out_dir="$work/train/$v-$p"
    done
  done
  # 3. MFU at the 1.3B shape, the largest micro-batch the memory model fits (small in the sandbox),
  # on the Brown ids under the 1.3B vocabulary's header (data-50304, made by prepare).
  local shape=() data=$BUNDLE/data-50304 mb
  if [[ -n ${VERIFY_SMALL:-} ]]; then
    shape=(--model.d_model=128 --model.n_heads=4 --model.n_layers=2 --model.d_ff=512 --model.seq_len=128
      --model.vocab_size=2048)
    data=$BUNDLE/data
  fi
  mb=$(largest_micro_batch "${shape[@]}")
  echo "{\"micro_batch\": $mb}" >"$work/mfu_micro_batch.json"
  for v in mha lrkv; do
    local rank=()
    [[ -n ${VERIFY_SMALL:-} && $v == lrkv ]] && rank=(--model.lrkv_rank=8)
    step "mfu_$v" 120 "${bundled[@]}" "$lrkv" train --config="$ROOT/configs/gpu/1.3b-$v.textproto" --data_dir="$data" \
      --device="$dev" --train.micro_batch="$mb" --train.global_batch="$mb" "${shape[@]}" "${rank[@]}" \
      --out_dir="$work/mfu/$v"
  done
  # 4. PyTorch on the same model: the largest micro-batch up to lrkv's that fits; eager, then compiled.
  local torch_shape=(--micro_batch 0 --max_micro_batch "$mb" --lrkv_rank 56 --steps 10 --warmup 3)
  [[ -n ${VERIFY_SMALL:-} ]] && torch_shape=(--micro_batch "$mb" --d_model 128 --n_heads 4 --n_layers 2 --vocab 2048
    --seq_len 128 --lrkv_rank 8 --steps 3 --warmup 1)
  for v in mha lrkv; do
    step "torch_$v" 90 "$python" "$ROOT/bench/gpu/torch_baseline.py" --attention "$v" "${torch_shape[@]}" \
      --out "$work/torch_$v.json"
  done
  # 5. The export through the safetensors package and the PyTorch reference (in the sandbox, where
  # Debian has no such package, through the test's own reader).
  local reader=(--library)
  if [[ -n ${VERIFY_SMALL:-} ]] && ! "$python" -c "import safetensors" 2>/dev/null; then reader=(); fi
  step safetensors 60 "$python" "$ROOT/tests/integration/export_check.py" logits "$BUNDLE/export/model.safetensors" \
    "$BUNDLE/export/case" --tol 1e-4 "${reader[@]}"
  # 6. Kernel times.
  step gpu_op_bench 45 bash -c "$(printf '%q ' "${bundled[@]}") '$BUNDLE/bin/gpu_op_bench' >'$work/gpu_op_bench.jsonl'"
  for v in mha lrkv; do
    step "torch_compiled_$v" 120 "$python" "$ROOT/bench/gpu/torch_baseline.py" --attention "$v" "${torch_shape[@]}" \
      --compile --out "$work/torch_compiled_$v.json"
  done
  # gpu_op_bench again with bf16 attention on the SIMT kernels: what the tensor-core kernels gain.
  step gpu_op_bench_simt 45 bash -c "LRKV_CUDA_FLASH_ATTENTION=0 $(printf '%q ' "${bundled[@]}") \
    '$BUNDLE/bin/gpu_op_bench' >'$work/gpu_op_bench_simt.jsonl'"
  "$python" "$ROOT/bench/gpu/verify_report.py" "$work" "$BUNDLE/reference" "$dev" | tee "$work/report.txt"
}

# The largest micro-batch of 16, 8, 4, 2, 1 whose predicted peak fits the GPU (H200: 141 GB).
largest_micro_batch() {
  local mb
  for mb in 16 8 4 2 1; do
    if "${bundled[@]}" "$BUNDLE/bin/lrkv" memory --config="$ROOT/configs/gpu/1.3b-mha.textproto" --peak=h200-sxm-bf16 --format=json \
      --train.micro_batch=$mb --train.global_batch=$mb "$@" 2>/dev/null | grep -q '"fits":true'; then
      echo "$mb"
      return
    fi
  done
  echo 1
}

# `device` where the GPU machine's absence of MPI, protobuf, Abseil and the rest is simulated: a
# mount namespace hides every library the bundle carries, and Open MPI's installed components, from
# their usual places; the emulated device stands in for the GPU, at small shapes.
sandbox() {
  local out=${OUT:-$BUILD/verify-sandbox}
  rm -rf "$out"
  mkdir -p "$out"
  local hide=""
  # The libraries the GPU machine lacks (its system has the C++ runtime, compression, ...).
  for lib in $(ls "$BUNDLE"/lib | grep -E '^lib(mpi|open-|hwloc|event|pmix|protobuf|absl_|openblas|blas|lapack|sentencepiece|gfortran|quadmath)'); do
    for where in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu; do
      if [[ -e $where/$lib ]]; then hide+="mount --bind /dev/null $where/$lib; "; fi
    done
  done
  # Debian's torch needs the hidden OpenBLAS too: there Python gets the bundle's copy.
  unshare -m bash -c "mount -t tmpfs none /usr/lib/x86_64-linux-gnu/openmpi && mount -t tmpfs none /etc/openmpi && $hide
    OUT='$out' VERIFY_WORK='${VERIFY_WORK:-$out/work}' LD_LIBRARY_PATH='$BUNDLE/lib' VERIFY_DEVICE=emulated VERIFY_SMALL=1 VERIFY_SECONDS=${VERIFY_SECONDS:-900} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} \
    PYTHON=/usr/bin/python3 '$0' device"
}

collect() {
  local from=${1:?the folder the device files came back in}
  local to=$ROOT/bench/results/gpu
  mkdir -p "$to"
  cp "$from"/{summary.json,report.txt,steps.jsonl} "$to/" 2>/dev/null || true
  if [[ -f $from/verify.tar.gz ]]; then tar -C "$to" -xzf "$from/verify.tar.gz"; fi
  echo "results in $to/"
}

case "${1:-}" in
  prepare) prepare ;;
  device) device ;;
  sandbox) sandbox ;;
  collect) collect "${2:-}" ;;
  *)
    echo "usage: $0 prepare | device | sandbox | collect DIR" >&2
    exit 2
    ;;
esac
