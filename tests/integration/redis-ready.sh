#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# redis-ready.sh - the everyday case with a real redis-server: workers wait
# for "redis-ready" before it exists, redis starts on a random port, the
# starter sets the event with the address, every worker gets it and talks to
# redis; after redis stops and the event is cleared, a new worker times out.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v redis-server >/dev/null || skip "redis-server is not installed"
command -v redis-cli >/dev/null || skip "redis-cli is not installed"
need_python

# worker N: a worker shell that waits for the address (evctl's stdout goes
# to $_SCRATCH/worker.N.val), then pings redis there (to worker.N.ping).
worker() {
        # shellcheck disable=SC2016
        bg_start 300 bash -c '
                f=$1
                "$EVCTL" wait redis-ready --timeout 240s >"$f.val" || exit
                addr=$(cat "$f.val")
                timeout 60 redis-cli -h "${addr%:*}" -p "${addr##*:}" ping >"$f.ping" 2>&1
                ' _ "$_SCRATCH/worker.$1"
        WPID=$BG_PID
}

# free_port: a currently free TCP port on 127.0.0.1.
free_port() {
        "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

evd_setup
expect_error 4 'redis-ready' "$EVCTL" show redis-ready

check "4 workers wait for redis-ready before it exists"
workers=()
for n in 1 2 3 4; do
        worker "$n"
        workers+=("$WPID")
done
wait_until "[[ \$(waiters redis-ready) == 4 ]]" ||
        fail "show redis-ready reports $(waiters redis-ready) waiters, want 4"

check "start redis-server on a random loopback port"
port=""
for attempt in 1 2 3 4 5; do
        p=$(free_port)
        bg_start 600 redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
                --daemonize no --dir "$EVD_DIR" --protected-mode yes
        rpid=$BG_PID
        if wait_until "timeout 10 redis-cli -h 127.0.0.1 -p $p ping 2>/dev/null | grep -x PONG >/dev/null || ! alive $rpid" &&
                alive "$rpid"; then
                port=$p
                break
        fi
        say "redis-server did not come up on port $p (attempt $attempt): $(tail -n 3 "$(bg_out "$rpid")")"
        kill -TERM -- "-$rpid" 2>/dev/null || true
done
[[ -n $port ]] || fail "could not start redis-server"
say "redis-server on 127.0.0.1:$port"
for w in "${workers[@]}"; do
        alive "$w" || { bg_wait "$w"; fail "a worker stopped waiting before redis-ready was set
$(bg_show "$w")"; }
done

check "evctl set redis-ready --value 127.0.0.1:$port wakes every worker with exactly that value, and each pings redis"
expect_exit 0 "$EVCTL" set redis-ready --value "127.0.0.1:$port"
n=0
for w in "${workers[@]}"; do
        n=$((n + 1))
        wait_until "! alive $w" || fail "worker $n was not woken (or did not finish its ping) within ${T_WAIT} s"
        bg_expect "$w" 0
        printf '127.0.0.1:%s\n' "$port" | cmp -s - "$_SCRATCH/worker.$n.val" ||
                fail "worker $n got $(_q "$(cat "$_SCRATCH/worker.$n.val")"), want 127.0.0.1:$port"
        [[ $(cat "$_SCRATCH/worker.$n.ping") == PONG ]] ||
                fail "worker $n: redis-cli ping said $(_q "$(cat "$_SCRATCH/worker.$n.ping")"), want PONG"
done
check "a worker started after the set gets the address at once"
expect_exit 0 "$EVCTL" wait redis-ready --timeout 0
expect_stdout "127.0.0.1:$port"
expect_exit 0 "$EVCTL" is-set redis-ready

check "redis stops, redis-ready is cleared, a new worker times out (exit 1)"
run redis-cli -h 127.0.0.1 -p "$port" shutdown nosave
wait_until "! alive $rpid" || fail "redis-server did not stop"
expect_exit 0 "$EVCTL" clear redis-ready
start=$(now_ms)
expect_exit 1 "$EVCTL" wait redis-ready --timeout 500ms
el=$(($(now_ms) - start))
expect_no_stdout
# Not before its deadline; later only within a deadline for a hang (a busy
# machine may start evctl late).
((el >= 400 && el < T_WAIT * 1000)) || fail "wait --timeout 500ms took ${el} ms"
say "wait --timeout 500ms gave up after ${el} ms"
expect_exit 1 "$EVCTL" is-set redis-ready
exit 0
