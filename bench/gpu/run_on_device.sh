#!/usr/bin/env bash
# Builds the CUDA backend's GPU test and benchmark on this (GPU-less) machine, bundles them with the
# shared libraries a bare GPU machine lacks, runs them there, and brings the results back.
#
# UNVERIFIED: written in a session without a GPU machine; the device step has never run.
#
# The GPU machine has the NVIDIA driver, CUDA, cuBLASLt and NCCL, but no MPI, protobuf or Abseil.
# The two binaries need no MPI (they link lrkv_runtime only); the bundle carries every shared
# library they load except glibc's own (libc, libm, libmvec, ...) and the large CUDA libraries (libcublasLt, libcuda), which
# must come from the GPU machine (CUDA 13, driver >= 580). libcudart is small and carried.
#
#   bench/gpu/run_on_device.sh prepare        # here: build build-gpu/, fill build-gpu/bundle/
#   bench/gpu/run_on_device.sh device         # there, in the repository root: run, write to $OUT
#   bench/gpu/run_on_device.sh collect DIR    # here: copy the returned files into bench/results/gpu/
#
# With the session's device tool: run command "bench/gpu/run_on_device.sh device" with
# carry ["build-gpu/bundle"] (the bundle must stay under the 64 MiB carry limit: `prepare` checks),
# then `collect` the folder the files come back in.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-gpu}
BUNDLE=$BUILD/bundle

prepare() {
  # RelWithDebInfo without -g: the root CMakeLists sets -march=native for Release only, and the GPU
  # machine's CPU may lack this machine's vector extensions.
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" \
    -DCMAKE_CUDA_FLAGS_RELWITHDEBINFO="-O3 -DNDEBUG" >/dev/null
  cmake --build "$BUILD" -j"${JOBS:-1}" --target backend_ops_test gpu_op_bench
  rm -rf "$BUNDLE"
  mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
  cp "$BUILD/bin/backend_ops_test" "$BUILD/bin/gpu_op_bench" "$BUNDLE/bin/"
  strip "$BUNDLE/bin/"*
  # Every resolved library except the C library's own and the CUDA libraries the GPU machine has.
  ldd "$BUNDLE/bin/backend_ops_test" "$BUNDLE/bin/gpu_op_bench" | awk '/=> \// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libmvec|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libcublas|libcublasLt|libnccl)\.so' |
    while read -r lib; do cp -L "$lib" "$BUNDLE/lib/"; done
  cp "$0" "$BUNDLE/"
  local bytes
  bytes=$(du -sb "$BUNDLE" | cut -f1)
  echo "bundle: $BUNDLE ($((bytes / 1024 / 1024)) MiB; the device tool carries at most 64 MiB)"
  ls "$BUNDLE/lib"
  if ((bytes > 64 * 1024 * 1024)); then
    echo "bundle too large to carry" >&2
    exit 1
  fi
}

device() {
  local out=${OUT:?set OUT to the folder whose files come back}
  cd "$BUNDLE"
  export LD_LIBRARY_PATH=$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  # cuBLASLt (and NCCL) from the machine's toolkit, wherever it keeps them.
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    if [[ -d $dir ]]; then LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$dir; fi
  done
  nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
  ldd bin/backend_ops_test bin/gpu_op_bench >"$out/ldd.txt" 2>&1 || true
  if grep -q "not found" "$out/ldd.txt"; then
    echo "missing libraries on the device:" >&2
    grep "not found" "$out/ldd.txt" >&2
  fi
  local rc=0
  bin/backend_ops_test --gtest_output="json:$out/backend_ops_test.json" >"$out/backend_ops_test.log" 2>&1 || rc=$?
  tail -n 40 "$out/backend_ops_test.log"
  bin/gpu_op_bench >"$out/gpu_op_bench.jsonl" 2>"$out/gpu_op_bench.err" || rc=$((rc == 0 ? $? : rc))
  cat "$out/gpu_op_bench.jsonl" "$out/gpu_op_bench.err"
  exit "$rc"
}

collect() {
  local from=${1:?the folder the device files came back in}
  mkdir -p "$ROOT/bench/results/gpu"
  cp "$from"/* "$ROOT/bench/results/gpu/"
  echo "results in $ROOT/bench/results/gpu/"
}

case "${1:-}" in
  prepare) prepare ;;
  device)
    # On the device the bundle is the carried build-gpu/bundle of the repository copy.
    device
    ;;
  collect) collect "${2:-}" ;;
  *)
    echo "usage: $0 prepare | device | collect DIR" >&2
    exit 2
    ;;
esac
