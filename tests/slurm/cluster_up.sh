#!/usr/bin/env bash
# Brings up a throw-away Slurm 22.05 cluster on this machine for tests: one munged, one slurmctld
# and NODES slurmds (simulated nodes node1..nodeN, all on 127.0.0.1 with their own ports). No
# systemd, cgroups or accounting. Everything lives in DIR; tests/slurm/cluster_down.sh DIR stops
# exactly the daemons started here, by PID.
#   cluster_up.sh DIR            # NODES=2 CPUS_PER_NODE=4
#   . DIR/env.sh                 # SLURM_CONF for sinfo/srun/sbatch/salloc
# Exit 77 (a CTest skip) when not root: slurmd must be root to start jobs.
#
# Isolation: the cluster has its own munged socket and free ports picked at start, so two clusters
# (two build trees testing at once) do not meet, and a munged or Slurm the machine already runs is
# never touched.
set -euo pipefail
dir="${1:?usage: cluster_up.sh DIR}"
NODES="${NODES:-2}"
CPUS_PER_NODE="${CPUS_PER_NODE:-4}"  # advertised; may exceed the real cores (config_overrides)
here="$(cd "$(dirname "$0")" && pwd)"
log() { echo "cluster_up: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then log "not root: cannot run slurmd; skipping"; exit 77; fi
installed() {  # slurmd's pmix plugin dlopens the unversioned libpmix.so that only libpmix-dev ships
  command -v slurmctld && command -v slurmd && command -v sbatch && command -v munged &&
    dpkg-query -W -f='${Status}' libpmix-dev | grep -q "ok installed"
} >/dev/null 2>&1
if ! installed; then
  log "Slurm, munge or libpmix-dev missing: running launch/install-deps.sh"
  "$here/../../launch/install-deps.sh" >&2
fi
for f in "$dir"/*.pid; do
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && die "a cluster already runs from $dir ($f); run cluster_down.sh"
done
# DIR is wiped: only an empty directory or an old cluster's.
[ ! -e "$dir" ] || [ -f "$dir/slurm.conf" ] || [ -z "$(ls -A "$dir")" ] || die "$dir exists and holds no cluster"
rm -rf "$dir"
mkdir -p "$dir/state" "$dir/log" "$dir/munge"
dir="$(cd "$dir" && pwd)"
# Half a cluster is no use: on any failure below, stop what did start.
trap 'status=$?; [ $status -eq 0 ] || "$here/cluster_down.sh" "$dir"; exit $status' EXIT

# Ports: a free block of NODES+1 from a base derived from the PID, probed with bash's /dev/tcp.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=""
for try in $(seq 0 40); do
  candidate=$((20000 + (($$ + try * 397) % 20000)))
  busy=0
  for p in $(seq "$candidate" $((candidate + NODES))); do port_busy "$p" && { busy=1; break; }; done
  [ $busy -eq 0 ] && { base=$candidate; break; }
done
[ -n "$base" ] || die "no free block of $((NODES + 1)) ports found"

# munged of our own, on a socket in DIR. It runs as the 'munge' user, which owns the key.
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
chown munge:munge "$dir/munge" && chmod 0755 "$dir/munge"
sock="$dir/munge/munge.socket"
runuser -u munge -- /usr/sbin/munged --socket="$sock" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" --key-file=/etc/munge/munge.key \
  || die "munged did not start (see $dir/munge/munged.log)"
cp "$dir/munge/munged.pid" "$dir/munged.pid"
for _ in $(seq 50); do munge -S "$sock" -n 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 && break; sleep 0.1; done
munge -S "$sock" -n | unmunge -S "$sock" >/dev/null || die "munged does not answer on $sock"

host="$(hostname -s)"  # slurmctld starts only where SlurmctldHost names this machine
# A host name that does not resolve costs every MPI start-up 5-10 s of DNS timeouts.
timeout 2 getent hosts "$(hostname)" >/dev/null 2>&1 ||
  log "warning: '$(hostname)' does not resolve; add it to /etc/hosts or MPI start-up stalls on DNS"
for i in $(seq 1 "$NODES"); do mkdir -p "$dir/spool/node$i" "$dir/tmp/node$i"; done
chmod 1777 "$dir"/tmp/node*
conf="$dir/slurm.conf"
cat > "$conf" <<EOF
# Written by tests/slurm/cluster_up.sh: $NODES simulated nodes on 127.0.0.1, no cgroups, no accounting.
ClusterName=lrkvtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
# Per node: the pmix plugin makes TmpFS/spmix_appdir_<uid>_<job>.<step> on every node, and a second
# node sharing the directory fails with "File exists" and hangs the step.
TmpFS=$dir/tmp/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
TaskProlog=$dir/task_prolog.sh
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Start batch jobs at once instead of every ~3 s (the defaults are tuned for big clusters).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
# One task dying ends its step, rather than leaving the others in a collective.
KillOnBadExit=1
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
MinJobAge=300
InactiveLimit=0
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
for i in $(seq 1 "$NODES"); do
  # One slurmd per node on 127.0.0.1: Debian's Slurm is built with multiple-slurmd support.
  echo "NodeName=node$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$((base + i)) CPUs=$CPUS_PER_NODE RealMemory=2000 State=UNKNOWN" >> "$conf"
done
# slurmd 22.05 loads a cgroup plugin even without cgroup tracking; autodetection dies where
# /sys/fs/cgroup is not mounted, cgroup/v1 loads without touching it.
echo "CgroupPlugin=cgroup/v1" > "$dir/cgroup.conf"
# Every task: which simulated node it is on, and a per-node directory for Open MPI's shared-memory
# segments (all nodes share /dev/shm and the hostname here, so their segment names would collide).
# Not for the batch step: mpirun started there would hand node1's directory to every rank.
cat > "$dir/task_prolog.sh" <<EOF
#!/bin/sh
echo "export LRKV_TEST_NODE=\$SLURMD_NODENAME"
[ -n "\${SLURM_STEP_ID:-}" ] && echo "export OMPI_MCA_btl_vader_backing_directory=$dir/tmp/\$SLURMD_NODENAME"
exit 0
EOF
chmod 0755 "$dir/task_prolog.sh"
echo "export SLURM_CONF=$conf" > "$dir/env.sh"
export SLURM_CONF="$conf"

# The daemons (and the slurmstepds of jobs) work in DIR/log: cluster_down.sh finds strays by that.
cd "$dir/log"
slurmctld -f "$conf" || die "slurmctld did not start (see $dir/log/slurmctld.log)"
for i in $(seq 1 "$NODES"); do
  slurmd -f "$conf" -N "node$i" || die "slurmd node$i did not start (see $dir/log/slurmd-node$i.log)"
done
deadline=$((SECONDS + 30))
until [ "$(sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l)" -ge "$NODES" ]; do
  if [ $SECONDS -ge $deadline ]; then sinfo -N >&2 || true; die "nodes not idle after 30 s; logs in $dir/log"; fi
  sleep 0.2
done
log "$NODES nodes up (slurmctld port $base), SLURM_CONF=$conf"
