#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# idle-waiters.sh [N [SECONDS]] - the CPU that N blocked `evctl wait`
# processes and the daemon use in SECONDS while nothing happens (from
# /proc/PID/schedstat before and after), and how often they woke, on a
# daemon of its own in a temporary runtime directory.  Build first (build/ by default, or
# BUILD=dir).
set -euo pipefail
n=${1:-1000}
secs=${2:-10}
build=${BUILD:-build}
evd=$build/daemon/evd
evctl=$build/tools/evctl
dir=$(mktemp -d /tmp/evd-idle.XXXXXX)
export EVD_RUNTIME_DIR=$dir
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        [[ -n ${dpid:-} ]] && kill "$dpid" 2>/dev/null
        wait 2>/dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
"$evd" --runtime-dir "$dir" --capacity 256 >"$dir.log" 2>&1 &
dpid=$!
for _ in $(seq 200); do [[ -S $dir/evd.sock ]] && break; sleep 0.05; done
"$evctl" create idle >/dev/null
for _ in $(seq "$n"); do
        "$evctl" wait idle >/dev/null &
        pids+=("$!")
done
# Until every one of them sleeps (in futex_waitv or futex).
for p in "${pids[@]}"; do
        until read -r nr _ <"/proc/$p/syscall" 2>/dev/null && [[ $nr == 449 || $nr == 202 ]]; do
                sleep 0.01
        done
done
# CPU time in nanoseconds (/proc/PID/schedstat, exact where utime and stime
# are sampled at the tick) and voluntary context switches (wake-ups).
usage() {
        local ns=0 sw=0 p a v
        for p in "$@"; do
                read -r a _ <"/proc/$p/schedstat" 2>/dev/null || continue
                ns=$((ns + a))
                v=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$p/status" 2>/dev/null) || v=0
                sw=$((sw + ${v:-0}))
        done
        echo "$ns $sw"
}
read -r w0 s0 < <(usage "${pids[@]}")
read -r d0 e0 < <(usage "$dpid")
sleep "$secs"
read -r w1 s1 < <(usage "${pids[@]}")
read -r d1 e1 < <(usage "$dpid")
awk -v n="$n" -v s="$secs" -v w=$((w1 - w0)) -v d=$((d1 - d0)) -v ws=$((s1 - s0)) \
    -v ds=$((e1 - e0)) 'BEGIN {
        printf "%d blocked waiters for %d s: waiters %.2f ms CPU, %d wake-ups; daemon %.2f ms CPU, %d wake-ups; %.4f%% of one core in total\n",
               n, s, w / 1e6, ws, d / 1e6, ds, 100 * (w + d) / 1e9 / s }'
"$evctl" set idle
