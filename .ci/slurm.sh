# Sourced by .ci/run (bash, set -euo pipefail): bring up a single-node Slurm cluster on this
# machine for the sweep package's end-to-end test, then export HYBRID_REQUIRE_SLURM=1 so that
# test must run (and fails rather than skips if Slurm is not usable).
#
# What it does, idempotently (a second source finds everything running and only waits):
#   - installs Debian's slurm-wlm and munge when sbatch/munged are missing (needs root: apt-get);
#   - writes a munge key and a minimal slurm.conf: this host as the only node, CPUs from nproc,
#     RealMemory from free, ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
#     SelectType=select/cons_tres, no cgroups, SlurmUser=root, state under $HYBRID_SLURM_DIR
#     (default /var/spool/hybrid-slurm);
#   - starts munged, slurmctld and slurmd and waits until `sinfo` shows the node idle.
#
# It can also be run directly: bash .ci/slurm.sh (then the export does not reach the caller).

hybrid_slurm_up() {
  export DEBIAN_FRONTEND=noninteractive
  local dir="${HYBRID_SLURM_DIR:-/var/spool/hybrid-slurm}"
  local host cpus mem conf
  if [ "$(id -u)" != 0 ]; then
    echo "slurm.sh: needs root to install and start Slurm (running as $(id -un))" >&2
    return 1
  fi
  if ! command -v sbatch >/dev/null 2>&1 || ! command -v slurmctld >/dev/null 2>&1 ||
    ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    echo "slurm.sh: installing slurm-wlm and munge"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  fi

  # The node name must be what slurmd reports for this machine.
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem="$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')"
  mkdir -p "$dir"/{ctld,d,log} /etc/slurm /etc/munge /run/munge /var/lib/munge /var/log/munge

  # munge: one key, owned by the user munged runs as.
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  local mu=root
  if id munge >/dev/null 2>&1; then mu=munge; fi
  chown "$mu:$mu" /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge
  chmod 0400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ "$mu" = munge ]; then
      runuser -u munge -- /usr/sbin/munged --force
    else
      /usr/sbin/munged --force
    fi
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  fi

  conf="$(
    cat <<EOF
# Written by .ci/slurm.sh: a single-node cluster for tests. No cgroups.
ClusterName=hybrid
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/d
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MinJobAge=600
MaxArraySize=10001
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  )"
  if [ ! -f /etc/slurm/slurm.conf ] || [ "$(cat /etc/slurm/slurm.conf)" != "$conf" ]; then
    printf '%s\n' "$conf" >/etc/slurm/slurm.conf
    # A changed configuration needs fresh daemons.
    if [ -f "$dir/slurmctld.pid" ]; then kill "$(cat "$dir/slurmctld.pid")" 2>/dev/null || true; fi
    if [ -f "$dir/slurmd.pid" ]; then kill "$(cat "$dir/slurmd.pid")" 2>/dev/null || true; fi
    sleep 1
  fi
  # No cgroup.conf: with proctrack/linuxproc and task/none nothing needs cgroups.
  rm -f /etc/slurm/cgroup.conf

  if ! { [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; }; then
    slurmctld -c
  fi
  if ! { [ -f "$dir/slurmd.pid" ] && kill -0 "$(cat "$dir/slurmd.pid")" 2>/dev/null; }; then
    slurmd
  fi

  local state=""
  for _ in $(seq 120); do
    state="$(sinfo -h -N -n "$host" -o '%t' 2>/dev/null | head -n1 || true)"
    case "$state" in
    idle | mix | alloc) break ;;
    down* | drain* | fail*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  case "$state" in
  idle | mix | alloc) ;;
  *)
    echo "slurm.sh: node $host is not idle (state '$state'); logs in $dir/log" >&2
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 2>/dev/null || true
    return 1
    ;;
  esac
  sinfo
  export HYBRID_REQUIRE_SLURM=1
}

hybrid_slurm_up
