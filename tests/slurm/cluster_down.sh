#!/usr/bin/env bash
# Stops the cluster tests/slurm/cluster_up.sh started in DIR: cancels its jobs, then stops its
# slurmds, slurmctld and munged by the PIDs in DIR's pid files, and finally any slurmstepd left
# from its jobs (found by its working directory, DIR/log, which it inherits). Touches no other
# process. Safe to run twice, and on a half-started cluster.
#   cluster_down.sh DIR
set -uo pipefail
dir="${1:?usage: cluster_down.sh DIR}"
log() { echo "cluster_down: $*" >&2; }
[ -d "$dir" ] || exit 0
dir="$(cd "$dir" && pwd)"
export SLURM_CONF="$dir/slurm.conf"

# stop NAME PID...: SIGTERM the PIDs that still run NAME, wait up to 10 s, SIGKILL what is left.
stop() {
  local name="$1" pid live=()
  shift
  for pid in "$@"; do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && kill "$pid" 2>/dev/null && live+=("$pid")
  done
  [ ${#live[@]} -gt 0 ] || return 0
  for _ in $(seq 100); do
    local any=0
    for pid in "${live[@]}"; do kill -0 "$pid" 2>/dev/null && any=1; done
    [ $any -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${live[@]}"; do
    kill -0 "$pid" 2>/dev/null && { log "$name $pid ignored SIGTERM: SIGKILL"; kill -9 "$pid" 2>/dev/null; }
  done
  log "stopped $name ${live[*]}"
}
pids_in() { local f; for f in "$@"; do [ -f "$f" ] && cat "$f"; done; }

ctld="$(pids_in "$dir/slurmctld.pid")"
if [ -n "$ctld" ] && kill -0 "$ctld" 2>/dev/null; then
  # Jobs first, so no task outlives the slurmd that would have killed it.
  jobs="$(timeout 10 squeue -h -o %i 2>/dev/null || true)"
  if [ -n "$jobs" ]; then
    log "cancelling jobs $(echo $jobs)"
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi
# shellcheck disable=SC2046
stop slurmd $(pids_in "$dir"/slurmd-*.pid) &
stop slurmctld $ctld
wait
stop munged $(pids_in "$dir/munged.pid")
# slurmstepd daemonizes and clears its environment; what ties it to this cluster is the working
# directory it inherits from our slurmd (DIR/log), as for every daemon started here. Its job's
# tasks (only left when the jobs could not be cancelled) are its descendants.
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
strays=()
for pid in $(pgrep 'slurm|munged'); do
  case "$(readlink "/proc/$pid/cwd" 2>/dev/null)/" in "$dir"/*) strays+=("$pid" $(descendants "$pid")) ;; esac
done
if [ ${#strays[@]} -gt 0 ]; then
  log "left over from the cluster: $(for p in "${strays[@]}"; do printf '%s(%s) ' "$p" "$(cat /proc/$p/comm 2>/dev/null)"; done)"
  kill -9 "${strays[@]}" 2>/dev/null
fi
rm -f "$dir"/*.pid
log "done"
