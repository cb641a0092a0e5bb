#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# quickstart.sh - install what evd needs, build it, and show it at work.
#
# Usage: sudo bash tools/quickstart.sh     (or plain bash when already root)
#
# The demo is the case evd exists for: three workers start before Redis and
# block in `evctl wait redis-ready`; once Redis answers, one `evctl set`
# releases all of them and hands them its address.  It uses evd's defaults:
# as root the system instance in /run/evd, as anyone else the user instance in
# $XDG_RUNTIME_DIR/evd (or wherever $EVD_RUNTIME_DIR points).  The first evctl
# call starts the daemon from the build tree; it is left running at the end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=$PWD

say() {
        printf '\n==> %s\n' "$*"
}

# Show an evctl command as a user would type it, then run it.
evctl_show() {
        printf '    $ evctl %s\n' "$*"
        "$EVCTL" "$@"
}

# Under sudo, build as the owner of the source tree, so that a later
# `bash tools/test.sh` without sudo can still write to build/.
as_owner() {
        local owner
        owner=$(stat -c %U .)
        if ((EUID == 0)) && [[ "$owner" != root && "$owner" != UNKNOWN ]] &&
                command -v runuser >/dev/null 2>&1; then
                runuser -u "$owner" -- "$@"
        else
                "$@"
        fi
}

tmp=$(mktemp -d)
worker_pids=()
redis_pid=

cleanup() {
        local pid pids=("${worker_pids[@]}")
        [[ -n "$redis_pid" ]] && pids+=("$redis_pid")
        for pid in "${pids[@]}"; do
                kill "$pid" 2>/dev/null || true
        done
        for pid in "${pids[@]}"; do
                wait "$pid" 2>/dev/null || true
        done
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Installing dependencies (tools/install-deps.sh)"
bash tools/install-deps.sh

say "Building evd into build/"
if [[ ! -f build/meson-private/coredata.dat ]]; then
        as_owner meson setup build -Dbuildtype=debugoptimized >"$tmp/setup.log" 2>&1 || {
                cat "$tmp/setup.log" >&2
                exit 1
        }
fi
as_owner meson compile -C build >"$tmp/compile.log" 2>&1 || {
        cat "$tmp/compile.log" >&2
        exit 1
}
echo "built build/daemon/evd, build/tools/evctl and build/lib/libevd.so"

export EVD_DAEMON=$top/build/daemon/evd
EVCTL=$top/build/tools/evctl
for bin in "$EVD_DAEMON" "$EVCTL"; do
        if [[ ! -x "$bin" ]]; then
                echo "quickstart.sh: $bin was not built" >&2
                exit 1
        fi
done

# Which namespace the defaults pick, to tell the reader (evctl works it out
# by itself; we only need to say it, or fill the gap when there is none).
if [[ -n "${EVD_RUNTIME_DIR:-}" ]]; then
        rundir=$EVD_RUNTIME_DIR
        what="the namespace \$EVD_RUNTIME_DIR points at"
elif ((EUID == 0)); then
        rundir=/run/evd
        what="the system instance (you are root)"
elif [[ -n "${XDG_RUNTIME_DIR:-}" ]]; then
        rundir=$XDG_RUNTIME_DIR/evd
        what="your user instance"
else
        # No login session (su, a container): give evd a private directory.
        rundir=${TMPDIR:-/tmp}/evd-$(id -u)
        # evctl makes only the default directories, never a named one.
        mkdir -p -m 0700 "$rundir"
        export EVD_RUNTIME_DIR=$rundir
        what="a private namespace (no \$XDG_RUNTIME_DIR, so EVD_RUNTIME_DIR=$rundir)"
fi

say "Using $what in $rundir; the first evctl call starts the daemon if none runs"
evctl_show list

if "$EVCTL" show redis-ready >/dev/null 2>&1; then
        say "Deleting the redis-ready event an earlier run left behind"
        evctl_show delete redis-ready
fi

worker() {
        local n=$1 addr status=0
        addr=$("$EVCTL" wait redis-ready --timeout 30s --progress 1s) || status=$?
        if ((status == 0)); then
                echo "worker $n got $addr"
        else
                echo "worker $n: evctl wait failed with exit status $status"
        fi
        return "$status"
}

say "Starting 3 workers; each runs: evctl wait redis-ready --timeout 30s --progress 1s"
for n in 1 2 3; do
        worker "$n" &
        worker_pids+=($!)
done

sleep 1
say "The workers are blocked; their wait created redis-ready, which is clear"
evctl_show list

addr=127.0.0.1:6399
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
        if redis-cli -p 6399 ping >/dev/null 2>&1; then
                say "Something already answers on port 6399; using it as our Redis"
        else
                say "Starting redis-server on $addr"
                redis-server --bind 127.0.0.1 --port 6399 --daemonize no \
                        --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
                redis_pid=$!
                for _ in $(seq 100); do
                        redis-cli -p 6399 ping >/dev/null 2>&1 && break
                        if ! kill -0 "$redis_pid" 2>/dev/null; then
                                cat "$tmp/redis.log" >&2
                                echo "quickstart.sh: redis-server did not start" >&2
                                exit 1
                        fi
                        sleep 0.1
                done
                echo "redis answers PONG"
        fi
else
        say "redis-server is not installed; pretending Redis is up"
fi

say "Redis is ready: announcing it to everyone who waits"
evctl_show set redis-ready --value "$addr"

failed=0
for pid in "${worker_pids[@]}"; do
        wait "$pid" || failed=$((failed + 1))
done
worker_pids=()

say "The event keeps its value for whoever asks later"
evctl_show show redis-ready

say "Clearing it, as Redis' stop script would"
evctl_show clear redis-ready
status=0
"$EVCTL" is-set redis-ready || status=$?
echo "    (evctl is-set redis-ready now exits $status: not set)"

if [[ -n "$redis_pid" ]]; then
        say "Stopping redis-server"
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=
fi

say "Never more than two builds at once: four jobs share a semaphore of two slots"
evctl_show sem create builds --max 2 --exist-ok
job_pids=()
for n in 1 2 3 4; do
        "$EVCTL" sem run builds --timeout 30s -- sh -c \
                "echo \"    build $n starts at \$(date +%T)\"; sleep 1; echo \"    build $n done at \$(date +%T)\"" &
        job_pids+=($!)
done
sleep 0.5
evctl_show show builds
for p in "${job_pids[@]}"; do
        wait "$p" || failed=$((failed + 1))
done

say "All three shards start together: each waits at a barrier for three parties"
shard_pids=()
for n in 1 2 3; do
        (
                sleep "0.$n"
                i=$("$EVCTL" barrier wait shards --parties 3 --timeout 30s) &&
                        echo "    shard $n starts (arrived as number $i)"
        ) &
        shard_pids+=($!)
done
for p in "${shard_pids[@]}"; do
        wait "$p" || failed=$((failed + 1))
done

pidfile=$rundir/evd.pid
say "Done.  The evd daemon is still running, serving $rundir"
echo "    try:      $EVCTL list"
echo "    stop it:  kill \"\$(cat $pidfile)\"   (objects stay in the segment; a new evd adopts them)"
echo "    tests:    bash tools/test.sh"

if ((failed)); then
        echo "quickstart.sh: $failed worker(s) or job(s) failed" >&2
        exit 1
fi
