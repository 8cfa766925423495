#!/usr/bin/env bash
# `lrkv train` under Open MPI's mpirun, on this machine or on the hosts of a hostfile, with the
# settings this CPU trainer wants. Everything that is not one of the options below goes to
# `lrkv train`.
#   launch/mpirun.sh -np 4 --config=configs/brown-tiny-lrkv.textproto --steps=100
#   launch/mpirun.sh -np 16 --hostfile hosts.txt --config=... --zero1
#   launch/mpirun.sh --dry-run -np 4 --config=...       # print the mpirun command only
# Options (anywhere before `--`; after `--` everything goes to lrkv train):
#   -np N            ranks. Default: every slot: this machine's cores, the hostfile's slots=, or
#                    inside a Slurm allocation its tasks (mpirun reads the allocation itself).
#   --hostfile FILE  one line per host, `host slots=K`; lrkv must sit at the same path on every host
#                    and the hosts must reach each other over ssh without a password.
#   --threads T      OpenMP threads per rank. Default: $OMP_NUM_THREADS, else on one host
#                    cores / ranks (at least 1), else Slurm's --cpus-per-task, else 1.
#   --oversubscribe  allow more ranks than slots. Added by itself on one host when N > cores.
#   --bind-to WHAT   core or none. Default: core when ranks fit the cores with one thread each
#                    (no rank migrates and loses its cache), none otherwise (pinned threads of
#                    several ranks would fight over the same cores).
#   --dry-run        print the command, run nothing.
# When no layout flag (--dp/--tp/--pp/--parallel.*) is given, --dp=N is added: N data-parallel ranks.
# Environment: LRKV_BIN (default build/bin/lrkv of this checkout), MPIRUN (default mpirun),
# MPIRUN_ARGS (more mpirun options, e.g. "--mca btl_tcp_if_include eth0" between hosts).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
lrkv="${LRKV_BIN:-$root/build/bin/lrkv}"
np=""; hostfile=""; threads="${OMP_NUM_THREADS:-}"; oversubscribe=0; bind=""; dry=0
train=()
die() { echo "mpirun.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -np|-n|--np) np="${2:?$1 needs a value}"; shift 2 ;;
    --hostfile) hostfile="${2:?--hostfile needs a file}"; shift 2 ;;
    --threads) threads="${2:?--threads needs a value}"; shift 2 ;;
    --oversubscribe) oversubscribe=1; shift ;;
    --bind-to) bind="${2:?--bind-to needs core or none}"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --) shift; train+=("$@"); break ;;
    *) train+=("$1"); shift ;;
  esac
done
[ -z "$np" ] || [ "$np" -ge 1 ] 2>/dev/null || die "-np must be a positive number, got '$np'"
[ -z "$hostfile" ] || [ -r "$hostfile" ] || die "cannot read hostfile '$hostfile'"
[ -x "$lrkv" ] || die "no lrkv binary at $lrkv (build first, or set LRKV_BIN)"

cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"  # nproc obeys OMP_NUM_THREADS otherwise
if [ -z "$np" ]; then
  if [ -n "$hostfile" ]; then
    # Sum the slots; a host line without slots= gets as many as its cores, which we cannot see from here.
    np="$(awk '!/^[[:space:]]*(#|$)/ { if (match($0, /slots=[0-9]+/)) s += substr($0, RSTART + 6, RLENGTH - 6); else bad = 1 }
               END { if (!bad) print s }' "$hostfile")"
    [ -n "$np" ] || die "$hostfile has a host without slots=K: give -np N"
  elif [ -n "${SLURM_NTASKS:-}" ]; then
    np="$SLURM_NTASKS"
  else
    np="$cores"
  fi
fi
on_one_host=0
[ -z "$hostfile" ] && [ -z "${SLURM_JOB_ID:-}" ] && on_one_host=1
if [ $on_one_host = 1 ] && [ "$np" -gt "$cores" ] && [ $oversubscribe = 0 ]; then
  echo "mpirun.sh: $np ranks on $cores cores: adding --oversubscribe" >&2
  oversubscribe=1
fi
if [ -z "$threads" ]; then
  threads="${SLURM_CPUS_PER_TASK:-1}"
  [ $on_one_host = 1 ] && [ "$np" -lt "$cores" ] && threads=$((cores / np))
fi
if [ -z "$bind" ]; then
  bind=none
  [ "$threads" = 1 ] && [ $oversubscribe = 0 ] && bind=core
fi

layout=0
for a in ${train[@]+"${train[@]}"}; do
  case "$a" in --dp=*|--tp=*|--pp=*|--parallel.*) layout=1 ;; esac
done
[ $layout = 1 ] || train+=("--dp=$np")

cmd=("${MPIRUN:-mpirun}" -np "$np" --bind-to "$bind" -x "OMP_NUM_THREADS=$threads" -x LRKV_MPIRUN_WRAPPER=1)
[ $oversubscribe = 0 ] || cmd+=(--oversubscribe)
[ -z "$hostfile" ] || cmd+=(--hostfile "$hostfile")
# shellcheck disable=SC2206  # MPIRUN_ARGS is split on purpose
[ -z "${MPIRUN_ARGS:-}" ] || cmd+=($MPIRUN_ARGS)
cmd+=("$lrkv" train ${train[@]+"${train[@]}"})
echo "mpirun.sh: ${cmd[*]}" >&2
[ $dry = 0 ] || exit 0
# Open MPI refuses to run as root unless told twice; only say so when we are root.
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# Open MPI's mpirun answers SIGTERM and SIGINT by killing the ranks about a second later, too soon for
# a checkpoint, but forwards SIGUSR1. So mpirun runs in a session of its own (a terminal's Ctrl-C
# reaches only this script) and this script turns the first TERM, INT or HUP into a USR1: the ranks
# save a checkpoint at the next step and exit 0, and so does this script. A second one aborts the job.
setsid "${cmd[@]}" &
job=$!
stops=0
stop() {
  stops=$((stops + 1))
  if [ $stops -eq 1 ]; then
    echo "mpirun.sh: SIG$1: the ranks save a checkpoint at the next step and stop (send it again to abort)" >&2
    kill -USR1 "$job" 2>/dev/null
  else
    echo "mpirun.sh: SIG$1 again: aborting the job without saving" >&2
    kill -TERM "$job" 2>/dev/null
  fi
}
for sig in TERM INT HUP; do trap "stop $sig" "$sig"; done
# `wait` returns early when a trapped signal arrives; wait again until mpirun has really exited.
while :; do
  status=0
  wait "$job" || status=$?
  kill -0 "$job" 2>/dev/null || break
done
exit "$status"
