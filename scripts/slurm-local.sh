#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for testing memo's slurm launcher (tests/test_slurm.py).
#
#   scripts/slurm-local.sh start    install slurm + munge if missing (apt-get), write the config,
#                                   start munged, slurmctld and slurmd, wait until the node is idle
#   scripts/slurm-local.sh status   the node's state from sinfo; exit 0 only if it takes jobs
#   scripts/slurm-local.sh stop     stop the three daemons
#
# The node is this host with its cores and memory (`slurmd -C`), in one partition `debug`;
# no cgroups (proctrack/linuxproc, task/none), no accounting (sacct is unavailable) and a
# job-completion log: $MEMO_SLURM_DIR/jobcomp.log. The config is /etc/slurm/slurm.conf, where
# the SLURM commands look for it; the script never overwrites one it did not write itself.
# The daemons run as root: `start` and `stop` re-run themselves with sudo when needed.
set -euo pipefail

STATE=${MEMO_SLURM_DIR:-/tmp/memo-slurm}   # state, spool, logs and pid files
CONF=/etc/slurm/slurm.conf
MARK="# Written by memo's scripts/slurm-local.sh"
HOST=$(hostname -s)
MUNGE_PID=/run/munge/munged.pid

# Print a message on stderr and exit 1.
die() {
  echo "slurm-local: $*" >&2
  exit 1
}

# Run "$0 $*" as root, through sudo when not root already.
as_root() {
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "needs root (or sudo) to $1"
    exec sudo -n -E "$0" "$@"
  fi
}

# Whether the process in pid file $1 is alive.
running() {
  [[ -s $1 ]] && [[ -d /proc/$(cat "$1") ]]
}

# The node's state as sinfo reports it (idle, mixed, allocated, down*, ...), or nothing.
node_state() {
  sinfo --noheader --nodes="$HOST" --format=%T 2>/dev/null | head -n 1 || true
}

# apt-get the packages when a daemon or a client is missing.
install() {
  local tool missing=0
  for tool in munged slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || missing=1
  done
  [[ $missing -eq 0 ]] && return
  echo "slurm-local: installing slurm and munge (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
}

# Write slurm.conf for this host (only when it changed, so a running cluster is left alone).
write_config() {
  local node
  [[ -e $CONF ]] && ! grep -qF "$MARK" "$CONF" && die "$CONF was not written by this script"
  # `slurmd -C` prints this machine as a NodeName line: its CPUs, sockets, cores, RealMemory.
  node=$(slurmd -C | head -n 1)
  mkdir -p "$(dirname "$CONF")" "$STATE/ctld" "$STATE/spool"
  cat >"$STATE/slurm.conf" <<EOF
$MARK: a one-node test cluster.
ClusterName=memo
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# No cgroups: processes tracked through /proc, tasks not bound to cores.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Cores and memory are what jobs ask for (--cpus-per-task, --mem).
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# No accounting database (sacct answers "accounting storage is disabled"); a completion log.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if ! cmp -s "$STATE/slurm.conf" "$CONF"; then
    cp "$STATE/slurm.conf" "$CONF"
    # A changed config takes a restart of the daemons.
    stop_slurm
  fi
}

# Start munged (authentication between the SLURM commands and daemons) with a key.
start_munge() {
  running "$MUNGE_PID" && return
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- munged
}

# Stop the daemon whose pid is in file $1, waiting up to 10 s for it to exit.
stop_daemon() {
  local pid
  running "$1" || return 0
  pid=$(cat "$1")
  kill "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  die "process $pid (from $1) did not stop"
}

# Stop slurmd and slurmctld.
stop_slurm() {
  stop_daemon "$STATE/slurmd.pid"
  stop_daemon "$STATE/slurmctld.pid"
}

start() {
  as_root start
  install
  write_config
  start_munge
  running "$STATE/slurmctld.pid" || slurmctld
  running "$STATE/slurmd.pid" || slurmd
  # Wait up to 30 s for the node to register and take jobs; a node left down from an
  # earlier run is resumed.
  local state=""
  for _ in $(seq 150); do
    state=$(node_state)
    case $state in
      idle | mixed | allocated) echo "slurm-local: node $HOST $state"; return ;;
      down* | drained* | draining*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  die "node $HOST not up after 30 s (state: ${state:-none}); see $STATE/slurmctld.log, $STATE/slurmd.log"
}

stop() {
  as_root stop
  stop_slurm
  stop_daemon "$MUNGE_PID"
  echo "slurm-local: stopped"
}

status() {
  local state
  state=$(node_state)
  echo "slurm-local: node $HOST ${state:-not running}"
  [[ $state =~ ^(idle|mixed|allocated)$ ]]
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 start|stop|status" ;;
esac
