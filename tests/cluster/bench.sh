#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.sh [--quick] [ROUNDS [KILL_ROUNDS]] - a cluster namespace measured
# against etcdctl in the same run (tools/evd-cluster-bench.c): lock run,
# hand-off, kill to reacquire, remote wake-up, whole process and
# in-process, and the safety contrast of a SIGKILLed holder.  Starts a
# 3-member etcd cluster on free localhost ports and two daemons (hosts A and
# B) on their own runtime directories.  Run from anywhere after building
# into build/; about a minute and a half on an idle 2-core machine, --quick
# about 20 s.  ETCDCTL_LOCK_TTL (default 2) is etcdctl lock's --ttl.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
EVD=${EVD:-$top/build/daemon/evd}
EVCTL=${EVCTL:-$top/build/tools/evctl}
BENCH=${BENCH:-$top/build/tools/evd-cluster-bench}
args=()
if [[ ${1:-} == --quick ]]; then
        args+=(--quick)
        shift
fi
[[ -z ${1:-} ]] || args+=(--rounds "$1")
[[ -z ${2:-} ]] || args+=(--kill-rounds "$2")
command -v etcd >/dev/null && command -v etcdctl >/dev/null || {
        echo "bench.sh: etcd and etcdctl are needed (Debian: apt-get install etcd-server etcd-client)" >&2
        exit 77
}
# shellcheck source=etcd3.sh
. "$here/etcd3.sh"
dirs=()
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        etcd3_stop
        for p in "${dirs[@]}"; do rm -rf "$p" "$p.log"; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
etcd3_start
for h in a b; do
        d=$(mktemp -d)
        dirs+=("$d")
        "$EVD" --runtime-dir "$d" --etcd "$ETCD3_URLS" --etcd-prefix "bench-$$/" --host-id "$h" \
                --ephemeral 2>"$d.log" &
        pids+=("$!")
        ok=0
        for _ in $(seq 1 1200); do [[ -S $d/evd.sock && -f $d/evd.cluster ]] && ok=1 && break; sleep 0.05; done
        ((ok)) || { echo "bench.sh: host $h's daemon did not start: $(cat "$d.log")" >&2; exit 1; }
done
echo "etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ { print $3 }'), load $(cut -d' ' -f1-3 /proc/loadavg)"
EVCTL=$EVCTL ETCDCTL_API=3 ETCDCTL_ENDPOINTS=$ETCD3_EPS "$BENCH" "${args[@]}" "${dirs[0]}" "${dirs[1]}"
