#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on this machine, for tests and CI.
#
#   tools/slurm_cluster.sh start  [STATE_DIR]  # install if asked, start, wait for the node
#   tools/slurm_cluster.sh stop   [STATE_DIR]  # stop what start started; keeps the logs
#   tools/slurm_cluster.sh status [STATE_DIR]  # exit 0 if the controller answers, node up
#
# STATE_DIR defaults to ${PRUNELAB_SLURM_DIR:-/tmp/prunelab-slurm}; it holds slurm.conf,
# the controller's state, slurmd's spool, the pid files and the logs (slurmctld.log,
# slurmd.log, apt.log; munged's in /run/munge/prunelab-munged.log). The last line `start` prints on stdout is
#   export SLURM_CONF=STATE_DIR/slurm.conf
# (also written to STATE_DIR/env), so a caller can
#   eval "$(tools/slurm_cluster.sh start | tail -1)"
# Progress and errors go to stderr. Exit status of start: 0 up; 1 the cluster did not come up
# (one line with the logs' tails; the daemons in STATE_DIR are stopped again); 3 SLURM cannot be
# installed or started here (its packages missing and PRUNELAB_SLURM_INSTALL=1 not set, not
# root, no apt-get, no network): one line `slurm_cluster: cannot install SLURM: <why>`, so
# callers can skip. Debian's packages are installed only with PRUNELAB_SLURM_INSTALL=1 (CI,
# `make test-slurm`): a test run never changes a machine's system packages unasked. `start` on a cluster
# that is up does nothing but print the export line; `stop` when nothing runs exits 0.
# Ports: slurmctld on PRUNELAB_SLURM_PORT_BASE (default 16817), slurmd on base + 1, away
# from SLURM's usual 6817/6818 so a system SLURM is left alone.
#
# Why the settings are what they are (measured, see /work/shared/SLURM.md):
# - Debian bookworm packages `slurmctld slurmd slurm-client munge` (SLURM 22.05), with
#   --no-install-recommends: about 10 s. No slurmdbd/mariadb: accounting_storage/none and
#   jobacct_gather/none (so no sacct; submitit sees a cancelled job as UNKNOWN).
#   While installing, a temporary /usr/sbin/policy-rc.d (only if there is none) keeps the
#   packages' scripts from starting munge/slurm services with the system-wide config.
# - No systemd here: each daemon is started by hand with a pid file in STATE_DIR and stopped
#   by that pid file. munged runs as user munge and needs /run/munge owned by munge and a key
#   (made with mungekey only if none exists). If a munged already answers, it is used and
#   left alone; STATE_DIR/munged.started records that this script started one.
# - slurmctld and slurmd run as root (SlurmUser=root, SlurmdUser=root): no slurm user or
#   spool directories to set up outside STATE_DIR.
# - No cgroups: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none.
# - select/cons_tres + CR_Core_Memory + DefMemPerCPU: without DefMemPerCPU a job that asks
#   for no memory takes the whole node, and a sweep ran one job at a time.
# - RealMemory is 85 % of MemTotal (slurmd refuses a node that claims more than it has);
#   ReturnToService=2 brings the node back by itself after a restart.
# - KillWait=5, MinJobAge=300 (squeue/scontrol still show finished jobs for 5 minutes, which
#   submitit needs without accounting), InactiveLimit=0, Waittime=0.
# - Daemons get stdin/stdout/stderr away from the caller's pipe: a daemon holding the pipe
#   open makes `$(... start | tail -1)` (and CI) hang.
# - `stop` first cancels this cluster's jobs (it is throw-away) so that no slurmstepd or job
#   outlives its slurmd, and kills any step of this cluster left after slurmd is gone. The
#   state (job ids, node) is kept; `start` cancels jobs the saved state calls running when no
#   step of theirs is left (after slurmctld was killed, they otherwise hold the CPUs forever:
#   measured, still "RUNNING" 60 s after the restart).
# - PMIx errors in the logs are harmless here (MpiDefault=none).
set -euo pipefail

PATH=/usr/sbin:/sbin:/usr/bin:/bin:${PATH:-}
export PATH

readonly PACKAGES=(slurmctld slurmd slurm-client munge)
readonly NEEDED_CMDS=(slurmctld slurmd sinfo squeue scancel scontrol munged mungekey munge unmunge)
readonly START_TIMEOUT_S=30
readonly STOP_TIMEOUT_S=20
readonly MUNGE_KEY=/etc/munge/munge.key
readonly DEF_MEM_PER_CPU_CAP_MB=4096

log() { printf 'slurm_cluster: %s\n' "$*" >&2; }

usage() {
    echo "usage: $0 {start|stop|status} [STATE_DIR]" >&2
    exit 2
}

# ---------------------------------------------------------------------------------------
# Pid files

# pid_of NAME PIDFILE: print the pid if PIDFILE names a live process called NAME.
pid_of() {
    local name=$1 pidfile=$2 pid comm
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]] || return 1
    echo "$pid"
}

# stop_pids NAME=PIDFILE...: TERM each live process at once (each takes about 2 s to go),
# wait (bounded), then KILL what is left; remove the pid files. Returns 1 if one survives.
stop_pids() {
    local arg name pidfile pid i alive rc=0 pids=() names=()
    for arg in "$@"; do
        name=${arg%%=*} pidfile=${arg#*=}
        if pid=$(pid_of "$name" "$pidfile"); then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid") names+=("$name")
        fi
    done
    for ((i = 0; i < (STOP_TIMEOUT_S + 5) * 10; i++)); do
        alive=0
        for pid in "${pids[@]}"; do
            if [[ -d /proc/$pid ]]; then
                alive=1
                if ((i == STOP_TIMEOUT_S * 10)); then
                    log "pid $pid ignored SIGTERM for ${STOP_TIMEOUT_S} s: SIGKILL"
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            fi
        done
        ((alive)) || break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if [[ -d /proc/${pids[i]} ]]; then
            log "${names[i]} (pid ${pids[i]}) is still there"
            rc=1
        fi
    done
    if ((rc == 0)); then
        for arg in "$@"; do
            rm -f "${arg#*=}"
        done
    fi
    return "$rc"
}

# ---------------------------------------------------------------------------------------
# Installation

cannot_install() {
    log "cannot install SLURM: $*"
    exit 3
}

ensure_installed() {
    local cmd missing=() policy_made=0 out
    for cmd in "${NEEDED_CMDS[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ ${PRUNELAB_SLURM_INSTALL:-} == 1 ]] || cannot_install "${missing[*]} missing;" \
        "\`make test-slurm\` installs Debian's SLURM packages (as root) and runs these tests"
    ((EUID == 0)) || cannot_install "not root and ${missing[*]} missing"
    command -v apt-get >/dev/null 2>&1 || cannot_install "no apt-get and ${missing[*]} missing"
    log "installing ${PACKAGES[*]} (log: $STATE_DIR/apt.log)"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_made=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    out=$STATE_DIR/apt.log
    if ! DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=120 update \
        </dev/null >"$out" 2>&1; then
        cannot_install "apt-get update failed (no network?): $(tail -n 1 "$out")"
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=120 \
        install --no-install-recommends "${PACKAGES[@]}" </dev/null >>"$out" 2>&1; then
        cannot_install "apt-get install failed: $(tail -n 1 "$out")"
    fi
    if ((policy_made)); then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    for cmd in "${NEEDED_CMDS[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || cannot_install "$cmd still missing after apt-get"
    done
}

# ---------------------------------------------------------------------------------------
# munge

munge_answers() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

ensure_munged() {
    # munged runs as user munge, who may not reach STATE_DIR (pytest's temp folders are
    # root's, mode 700): its pid file and log go to /run/munge, which munge owns.
    local i mdir=/run/munge
    if munge_answers; then
        return 0
    fi
    if [[ ! -e $MUNGE_KEY ]]; then
        log "creating $MUNGE_KEY"
        mkdir -p "$(dirname "$MUNGE_KEY")"
        mungekey --create --keyfile="$MUNGE_KEY"
        chown munge:munge "$MUNGE_KEY"
        chmod 400 "$MUNGE_KEY"
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    rm -f "$mdir/prunelab-munged.pid"
    log "starting munged"
    # munged daemonizes itself; its own messages go to $mdir/prunelab-munged.log.
    if ! runuser -u munge -- munged --pid-file="$mdir/prunelab-munged.pid" \
        --log-file="$mdir/prunelab-munged.log" </dev/null >>"$mdir/prunelab-munged.out" 2>&1; then
        log "munged did not start: $(tail -q -n 2 "$mdir/prunelab-munged.out" "$mdir/prunelab-munged.log" \
            2>/dev/null | tr '\n' ' ')"
        exit 1
    fi
    echo "$mdir/prunelab-munged.pid" >"$STATE_DIR/munged.started"
    for ((i = 0; i < 50; i++)); do
        if munge_answers; then
            return 0
        fi
        sleep 0.1
    done
    log "munged started but does not answer: $(tail -n 2 "$mdir/prunelab-munged.log" 2>/dev/null |
        tr '\n' ' ')"
    stop_pids munged="$mdir/prunelab-munged.pid" || true
    rm -f "$STATE_DIR/munged.started"
    exit 1
}

# ---------------------------------------------------------------------------------------
# slurm.conf

write_conf() {
    local host cpus mem_kb real_mb def_mb base
    host=$(hostname -s)
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    real_mb=$((mem_kb * 85 / 100 / 1024))
    def_mb=$((real_mb / cpus))
    if ((def_mb > DEF_MEM_PER_CPU_CAP_MB)); then
        def_mb=$DEF_MEM_PER_CPU_CAP_MB
    fi
    base=$PORT_BASE
    cat >"$CONF.tmp" <<EOF
# Written by tools/slurm_cluster.sh (see the comments there) at each start with no daemon up.
ClusterName=prunelab
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${base}
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=${STATE_DIR}/state
SlurmdSpoolDir=${STATE_DIR}/spool
SlurmctldPidFile=${STATE_DIR}/slurmctld.pid
SlurmdPidFile=${STATE_DIR}/slurmd.pid
SlurmctldLogFile=${STATE_DIR}/slurmctld.log
SlurmdLogFile=${STATE_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${def_mb}
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
KillWait=5
MinJobAge=300
InactiveLimit=0
Waittime=0
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv -f "$CONF.tmp" "$CONF"
}

# ---------------------------------------------------------------------------------------
# Health

# node_up: the controller answers and every node is in a usable state.
node_up() {
    local states s
    [[ -r $CONF ]] || return 1
    command -v sinfo >/dev/null 2>&1 || return 1
    states=$(timeout 5 sinfo -h -o %T 2>/dev/null) || return 1
    [[ -n $states ]] || return 1
    while read -r s; do
        case $s in
            idle | mixed | allocated | completing) ;;
            *) return 1 ;;
        esac
    done <<<"$states"
}

daemons_alive() {
    pid_of slurmctld "$STATE_DIR/slurmctld.pid" >/dev/null &&
        pid_of slurmd "$STATE_DIR/slurmd.pid" >/dev/null
}

print_export() {
    local line="export SLURM_CONF=$CONF"
    echo "$line" >"$STATE_DIR/env"
    echo "$line"
}

logs_tail() {
    local f parts=()
    for f in slurmctld.log slurmd.log; do
        if [[ -r $STATE_DIR/$f ]]; then
            parts+=("$f: $(tail -n 3 "$STATE_DIR/$f" | tr '\n' ' ' | tr -s ' ')")
        fi
    done
    if ((${#parts[@]} == 0)); then
        echo "no logs in $STATE_DIR"
    else
        local IFS='|'
        echo "${parts[*]}"
    fi
}

# ---------------------------------------------------------------------------------------
# Commands

do_start() {
    local i started=0 fresh_node=0 ids t0
    ensure_installed
    ((EUID == 0)) || cannot_install "not root (slurmd must run as root here)"
    if daemons_alive && node_up; then
        log "already up ($STATE_DIR)"
        print_export
        return 0
    fi
    mkdir -p "$STATE_DIR/state" "$STATE_DIR/spool"
    ensure_munged
    # Keep the config running daemons read; write it afresh when none runs.
    if [[ ! -e $CONF ]] || ! {
        pid_of slurmctld "$STATE_DIR/slurmctld.pid" >/dev/null ||
            pid_of slurmd "$STATE_DIR/slurmd.pid" >/dev/null
    }; then
        write_conf
    fi
    t0=$(date +%s)
    if ! pid_of slurmctld "$STATE_DIR/slurmctld.pid" >/dev/null; then
        log "starting slurmctld on port $PORT_BASE"
        slurmctld -f "$CONF" </dev/null >>"$STATE_DIR/slurmctld.out" 2>&1 || true
        started=1
    fi
    if ! pid_of slurmd "$STATE_DIR/slurmd.pid" >/dev/null; then
        log "starting slurmd on port $((PORT_BASE + 1))"
        if [[ -z $(our_steps) ]]; then
            fresh_node=1
        fi
        slurmd -f "$CONF" </dev/null >>"$STATE_DIR/slurmd.out" 2>&1 || true
        started=1
    fi
    for ((i = 0; i < START_TIMEOUT_S * 5; i++)); do
        # A daemon that died (port taken, bad config) does not come back: stop waiting.
        if ((i >= 10)) && ! daemons_alive; then
            log "slurmctld or slurmd exited: $(logs_tail)"
            if ((started)); then
                do_stop >/dev/null 2>&1 || true
            fi
            exit 1
        fi
        if daemons_alive && node_up; then
            # A job the saved state calls running (started before this call), on a node
            # with no job step of this cluster, died with the cluster (slurmctld killed,
            # machine restarted): SLURM would keep it "RUNNING", holding its CPUs, for good.
            if ((fresh_node)); then
                ids=$(SLURM_TIME_FORMAT=%s timeout 5 squeue -h -t RUNNING,COMPLETING,SUSPENDED \
                    -o '%A %S' 2>/dev/null | awk -v t0="$t0" '$2 + 0 < t0 {print $1}') || ids=""
                if [[ -n $ids ]]; then
                    log "cancelling jobs lost while the cluster was down:" \
                        "$(echo "$ids" | tr '\n' ' ')"
                    # shellcheck disable=SC2086  # one id per word
                    timeout 5 scancel $ids 2>/dev/null || true
                fi
            fi
            log "up ($STATE_DIR, node $(hostname -s): $(sinfo -h -o %T | head -n 1))"
            print_export
            return 0
        fi
        sleep 0.2
    done
    log "cluster not up after ${START_TIMEOUT_S} s: $(logs_tail)"
    if ((started)); then
        do_stop >/dev/null 2>&1 || true
    fi
    exit 1
}

# cancel_jobs: cancel this cluster's jobs so that none outlives slurmd (bounded wait).
cancel_jobs() {
    local ids i
    pid_of slurmctld "$STATE_DIR/slurmctld.pid" >/dev/null || return 0
    ids=$(timeout 5 squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o %A 2>/dev/null) || return 0
    [[ -n $ids ]] || return 0
    log "cancelling jobs: $(echo "$ids" | tr '\n' ' ')"
    # shellcheck disable=SC2086  # one id per word
    timeout 5 scancel $ids 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT_S * 5; i++)); do
        ids=$(timeout 5 squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o %A 2>/dev/null) ||
            return 0
        [[ -z $ids ]] && return 0
        sleep 0.2
    done
}

# our_steps: pids of this cluster's slurmstepd processes. slurmd passes its environment on,
# so a step of this cluster has SLURM_CONF=$CONF in /proc/PID/environ.
our_steps() {
    local pid
    for pid in $(pgrep -x slurmstepd || true); do
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$CONF"; then
            echo "$pid"
        fi
    done
}

# kill_orphan_steps: job steps of this cluster still there after slurmd stopped (jobs that
# could not be cancelled, e.g. slurmctld was already gone). Each step runs in a session of
# its own with the job's processes; the whole session is signalled.
kill_orphan_steps() {
    local pid sid sids=() i sig alive
    for pid in $(our_steps); do
        sid=$(ps -o sid= -p "$pid" | tr -d ' ') || continue
        if [[ -n $sid ]] && ((sid > 1 && sid != $(ps -o sid= -p $$))); then
            sids+=("$sid")
        fi
    done
    ((${#sids[@]} > 0)) || return 0
    log "killing leftover job steps (sessions ${sids[*]})"
    for sig in TERM KILL; do
        for sid in "${sids[@]}"; do
            pkill "-$sig" -s "$sid" 2>/dev/null || true
        done
        for ((i = 0; i < 30; i++)); do
            alive=0
            for sid in "${sids[@]}"; do
                if pgrep -s "$sid" >/dev/null; then
                    alive=1
                fi
            done
            ((alive)) || return 0
            sleep 0.1
        done
    done
}

do_stop() {
    local rc=0
    [[ -d $STATE_DIR ]] || return 0
    if [[ -r $CONF ]]; then
        cancel_jobs
    fi
    local daemons=(slurmd="$STATE_DIR/slurmd.pid" slurmctld="$STATE_DIR/slurmctld.pid")
    if [[ -r $STATE_DIR/munged.started ]]; then
        daemons+=(munged="$(cat "$STATE_DIR/munged.started")")
    fi
    stop_pids "${daemons[@]}" || rc=1
    kill_orphan_steps
    if ((rc == 0)); then
        rm -f "$STATE_DIR/munged.started"
    fi
    return "$rc"
}

do_status() {
    if daemons_alive && node_up; then
        echo "slurm_cluster: up ($STATE_DIR): $(sinfo -h -o '%N %T %C')"
        return 0
    fi
    echo "slurm_cluster: not up ($STATE_DIR)"
    return 1
}

# ---------------------------------------------------------------------------------------

(($# >= 1 && $# <= 2)) || usage
cmd=$1
STATE_DIR=${2:-${PRUNELAB_SLURM_DIR:-/tmp/prunelab-slurm}}
if [[ $cmd == start ]] && ! mkdir -p "$STATE_DIR" 2>/dev/null; then
    log "cannot install SLURM: cannot create $STATE_DIR"
    exit 3
fi
if [[ -d $STATE_DIR ]]; then
    STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
fi
PORT_BASE=${PRUNELAB_SLURM_PORT_BASE:-16817}
if ! [[ $PORT_BASE =~ ^[0-9]+$ ]] || ((PORT_BASE < 1024 || PORT_BASE > 65534)); then
    log "PRUNELAB_SLURM_PORT_BASE must be a port number 1024-65534, not '$PORT_BASE'"
    exit 2
fi
CONF=$STATE_DIR/slurm.conf
SLURM_CONF=$CONF
export SLURM_CONF
readonly STATE_DIR PORT_BASE CONF

case $cmd in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    *) usage ;;
esac
