#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests of the workflow's SLURM profile.
#
#   scripts/slurm/local_cluster.sh start [STATE_DIR]   install (if needed) and start munge, slurmctld, slurmd
#   scripts/slurm/local_cluster.sh stop  [STATE_DIR]   stop the daemons this script started (by their PIDs)
#   scripts/slurm/local_cluster.sh status [STATE_DIR]
#
# STATE_DIR (default /tmp/dstorm-slurm) holds slurm.conf, gres.conf, the PID files, spool, state and logs.
# The node offers every CPU, the memory slurmd sees minus 1 GiB, and one fake GPU (gres gpu:a100:1 on
# /dev/null) so that `--gpus=1` requests are accepted; jobs see CUDA_VISIBLE_DEVICES=0 but no GPU.
# Needs root (packages, /etc/slurm/slurm.conf, munge). Debian/Ubuntu: installs slurmctld, slurmd,
# slurm-client and munge with apt-get when they are missing (exit code 3 when that is impossible). Facts behind each setting:
# shared/reference/slurm-local.md (SLURM 22.05, no accounting, no cgroups).
set -euo pipefail

ACTION=${1:-}
STATE=$(realpath -m "${2:-/tmp/dstorm-slurm}")
CONF="$STATE/slurm.conf"
PARTITION=debug

die() { echo "local_cluster.sh: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return
    if ! command -v apt-get >/dev/null; then
        echo "local_cluster.sh: SLURM is not installed and apt-get is missing: install slurmctld, slurmd, slurm-client and munge" >&2
        exit 3
    fi
    echo "installing slurmctld slurmd slurm-client munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }; then
        echo "local_cluster.sh: apt-get could not install the SLURM packages" >&2
        exit 3  # the tests skip on this code: no package source, not a fault of the workflow
    fi
}

write_config() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    mem=$(( mem > 2048 ? mem - 1024 : mem ))  # a RealMemory above what slurmd sees drains the node
    mkdir -p "$STATE"/{spool,state,log}
    cat >"$CONF" <<EOF
# written by scripts/slurm/local_cluster.sh: a one-node test cluster
ClusterName=dstorm-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
MpiDefault=none
ReturnToService=2
MinJobAge=300
GresTypes=gpu
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:a100:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    # without File= the node goes INVAL; /dev/null is a device file that exists everywhere
    echo "NodeName=localhost Name=gpu Type=a100 File=/dev/null" >"$STATE/gres.conf"
    # jobs launched by srun lose SLURM_CONF: the daemons' and clients' default path must lead here
    mkdir -p /etc/slurm
    if [ -e /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf || true)" != "$CONF" ]; then
        [ -L /etc/slurm/slurm.conf ] && [[ "$(readlink /etc/slurm/slurm.conf)" == */dstorm-* ]] \
            || die "/etc/slurm/slurm.conf exists and is not this script's link: this machine has a SLURM of its own"
    fi
    ln -sfn "$CONF" /etc/slurm/slurm.conf
    ln -sfn "$STATE/gres.conf" /etc/slurm/gres.conf
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    install -d -o munge -g munge /run/munge
    [ -s /etc/munge/munge.key ] || { /usr/sbin/mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; }
    runuser -u munge -- /usr/sbin/munged
    pgrep -u munge -x munged -n >"$STATE/munged.pid"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.1; done
    die "munged did not come up"
}

wait_idle() {
    for _ in $(seq 150); do
        case "$(sinfo -h -N -o %T 2>/dev/null || true)" in
            idle*) return ;;
        esac
        sleep 0.2
    done
    sinfo -N -l >&2 || true
    tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    die "the node did not become idle within 30 s"
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    [ "$(id -u)" = 0 ] || die "needs root (packages, /etc/slurm, munge)"
    install_packages
    if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid"; then
        echo "already running (state in $STATE)"; return
    fi
    if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
        die "slurmctld/slurmd already running (PIDs $(pgrep -d, -x 'slurmctld|slurmd')) but not from $STATE: stop that cluster first"
    fi
    write_config
    start_munge
    export SLURM_CONF="$CONF"
    slurmctld -f "$CONF"
    slurmd -f "$CONF" -N localhost
    wait_idle
    echo "SLURM up: partition $PARTITION, $(nproc) CPUs, 1 fake GPU (state in $STATE)"
}

stop() {
    local name pid
    for name in slurmd slurmctld munged; do
        if alive "$STATE/$name.pid"; then
            pid=$(cat "$STATE/$name.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$STATE/$name.pid"
    done
    [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null || true)" = "$CONF" ] && rm -f /etc/slurm/slurm.conf /etc/slurm/gres.conf
    echo "SLURM stopped (state in $STATE)"
}

case "$ACTION" in
    start) start ;;
    stop) stop ;;
    status) export SLURM_CONF="$CONF"; sinfo -N -l && squeue ;;
    *) die "usage: $0 start|stop|status [STATE_DIR]" ;;
esac
