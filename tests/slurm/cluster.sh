#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the SLURM tests (tests/e2e/test_slurm.py).
#   tests/slurm/cluster.sh start   install (apt, only what is missing), configure, start, wait for `idle`
#   tests/slurm/cluster.sh stop    stop the daemons this script started
#   tests/slurm/cluster.sh status  sinfo
# Needs root. Daemons run directly (containers have no systemd); pids and logs go to $STATE.
set -euo pipefail

STATE=${SAE_LAB_SLURM_STATE:-/var/tmp/sae_lab_slurm}
CONF_DIR=/etc/slurm
MARK="# written by sae_lab tests/slurm/cluster.sh"
HOST=$(hostname -s)
CPUS=$(nproc)
# Memory SLURM may hand out: most of the machine, leaving some for the daemons and the test runner.
MEM_MB=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))

die() { echo "cluster.sh: $*" >&2; exit 1; }

install_missing() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return
    echo "Installing ${missing[*]} ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

write_config() {
    # Never overwrite a real cluster's config: only a missing one or one this script wrote.
    if [ -f "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
        die "$CONF_DIR/slurm.conf exists and was not written by this script; not touching it."
    fi
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d"
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK
ClusterName=saelab
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# No systemd and hybrid cgroup mounts: track processes by /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
# Short waits keep the tests quick: kill 5 s after SIGTERM, forget finished jobs after 5 min.
KillWait=5
MinJobAge=300
JobRequeue=1
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$CONF_DIR/cgroup.conf" <<EOF
$MARK
CgroupPlugin=cgroup/v1
IgnoreSystemd=yes
EOF
}

start_munge() {
    pgrep -x munged >/dev/null && return
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    chmod 0400 /etc/munge/munge.key
    runuser -u munge -- munged
}

wait_idle() {
    for _ in $(seq 60); do
        if sinfo -h -N -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            return
        fi
        sleep 1
    done
    sinfo -N >&2 || true
    tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
    die "the node did not become idle within 60 s (logs above)."
}

start() {
    [ "$(id -u)" -eq 0 ] || die "needs root (it installs packages and starts daemons)."
    install_missing
    write_config
    start_munge
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    wait_idle
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    echo "SLURM is up: $(sinfo -h -o '%P %D node(s) %C cpus(A/I/O/T) %T')"
}

stop_pidfile() {
    local file=$1
    [ -f "$file" ] || return 0
    local pid
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    rm -f "$file"
}

stop() {
    scancel --user="$(id -un)" 2>/dev/null || true
    stop_pidfile "$STATE/slurmd.pid"
    stop_pidfile "$STATE/slurmctld.pid"
    # munged is left running: it is harmless, and another munge user may share it.
    echo "SLURM stopped."
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
