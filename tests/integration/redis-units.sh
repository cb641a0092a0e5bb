#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# redis-units.sh - the worked examples in systemd/examples/, with a real
# redis-server: the commands that run are the Exec*= lines of the shipped
# files themselves, expanded as systemd would (unitexec.py), so a broken
# example fails here.
#
#   workers (worker.service: ExecStartPre= then ExecStart=) start first and
#   block; Redis comes up; the drop-in's ExecStartPost= lines wait until it
#   answers and set redis-ready to its address; every worker goes on and
#   subscribes with redis-cli at that address.  Redis stops: ExecStopPost=
#   clears the event and a new worker waits again.  Redis crashes:
#   ExecStopPost= fails the event and a new worker exits 3 with the reason.
#   A worker times out with exit 1; the ExecStartPost= wait is bounded; and
#   evd-wait@.service reports READY=1 only once the event is set.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v redis-server >/dev/null || skip "redis-server is not installed"
command -v redis-cli >/dev/null || skip "redis-cli is not installed"
need_python

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
examples=${SOURCE_ROOT:-$here/../..}/systemd/examples
dropin=$examples/redis-server.service.d/evd.conf
worker_unit=$examples/worker.service
wait_unit=$examples/evd-wait@.service
for f in "$dropin" "$worker_unit" "$wait_unit"; do
        [[ -f $f ]] || fail "missing example $f"
done
ux=("$PY" "$here/unitexec.py")
# The examples call evctl by name, as systemd finds an installed one: let
# them find the built one, through a shim that points their --system at the
# test's namespace (a flag beats EVD_RUNTIME_DIR, so the environment cannot).
mkdir "$_SCRATCH/bin"
cat >"$_SCRATCH/bin/evctl" <<'SHIM'
#!/usr/bin/env bash
args=()
for a in "$@"; do
        if [[ $a == --system ]]; then
                args+=(--runtime-dir "$EVD_RUNTIME_DIR")
        else
                args+=("$a")
        fi
done
exec "$EVCTL" "${args[@]}"
SHIM
chmod +x "$_SCRATCH/bin/evctl"
PATH=$_SCRATCH/bin:$PATH
export PATH

free_port() {
        "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_redis PORT: a redis-server on 127.0.0.1:PORT (RPID: its timeout(1)
# process group).  Returns 1 if it does not answer within T_WAIT.
start_redis() {
        bg_start 600 redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
                --daemonize no --dir "$EVD_DIR" --protected-mode yes
        RPID=$BG_PID
        wait_until "timeout 10 redis-cli -h 127.0.0.1 -p $1 ping 2>/dev/null | grep -x PONG >/dev/null || ! alive $RPID" &&
                alive "$RPID"
}

# worker N [ENV...]: run worker.service's ExecStartPre=, then its ExecStart=,
# as systemd starts the unit.  Output in $_SCRATCH/worker.N.{out,err}; the
# timeout(1) pid in W[N].
declare -A W=()
worker() {
        local n=$1
        shift
        local envs=() e
        for e in "$@"; do
                envs+=(--env "$e")
        done
        # shellcheck disable=SC2016
        bg_start 600 bash -c '
                out=$1 err=$2
                shift 2
                "$@" ExecStartPre 2>"$err" || exit
                exec "$@" ExecStart >"$out" 2>>"$err"
                ' _ "$_SCRATCH/worker.$n.out" "$_SCRATCH/worker.$n.err" "${ux[@]}" "${envs[@]}" "$worker_unit"
        W[$n]=$BG_PID
}

# numsub PORT: subscribers of channel "jobs".
numsub() { timeout 10 redis-cli -h 127.0.0.1 -p "$1" pubsub numsub jobs 2>/dev/null | sed -n 2p; }

evd_setup

check "the examples' commands parse as systemd would parse them"
expect_exit 0 "${ux[@]}" --print "$dropin" ExecStartPost
expect_stdout_match '"evctl", "--system", "set", "redis-ready", "--value", "127.0.0.1:6379"'
expect_exit 0 "${ux[@]}" --print "$dropin" ExecStopPost
expect_exit 0 "${ux[@]}" --print "$worker_unit" ExecStartPre
expect_stdout_match '"evctl", "--system", "wait", "redis-ready", "--timeout", "2m"'

check "3 workers start before Redis and block in ExecStartPre"
for n in 1 2 3; do
        worker "$n"
done
wait_until "[[ \$(waiters redis-ready) == 3 ]]" ||
        fail "redis-ready has $(waiters redis-ready) waiters, want 3"
for n in 1 2 3; do
        alive "${W[$n]}" || { bg_wait "${W[$n]}"; fail "worker $n stopped early: $(cat "$_SCRATCH/worker.$n.err")"; }
        [[ ! -s $_SCRATCH/worker.$n.out ]] || fail "worker $n ran ExecStart= before redis-ready was set"
done

check "evd-wait@redis-ready.service: STATUS= while waiting, no READY=1 yet"
bg_start 600 "$PY" "$here/notify.py" 500 "$_SCRATCH/wait-unit.notify" -- "${ux[@]}" --instance redis-ready \
        "$wait_unit" ExecStart
WAITUNIT=$BG_PID
wait_until "grep -q '^STATUS=waiting for redis-ready' '$_SCRATCH/wait-unit.notify' 2>/dev/null" ||
        fail "evd-wait@redis-ready sent no STATUS=waiting for redis-ready: $(cat "$_SCRATCH/wait-unit.notify" 2>/dev/null)"
sleep 0.2
! grep -q 'READY=1' "$_SCRATCH/wait-unit.notify" || fail "READY=1 before redis-ready was set"

check "ExecStartPost='s wait for Redis is bounded: nobody on the port, REDIS_READY_TIMEOUT=1"
dead_port=$(free_port)
start=$(now_ms)
expect_exit 124 "${ux[@]}" --env REDIS_PORT="$dead_port" --env REDIS_READY_TIMEOUT=1 "$dropin" ExecStartPost
el=$(($(now_ms) - start))
# Not before REDIS_READY_TIMEOUT; later only within a deadline for a hang.
((el >= 900 && el < T_WAIT * 1000)) || fail "the bounded wait took ${el} ms, want about 1 s"
expect_exit 1 "$EVCTL" is-set redis-ready

check "Redis comes up; ExecStartPost= sets redis-ready to its address"
port=""
for attempt in 1 2 3 4 5; do
        p=$(free_port)
        if start_redis "$p"; then
                port=$p
                break
        fi
        say "redis-server did not come up on port $p (attempt $attempt)"
        kill -TERM -- "-$RPID" 2>/dev/null || true
done
[[ -n $port ]] || fail "could not start redis-server"
redis_env=(--env REDIS_PORT="$port" --env REDIS_READY_TIMEOUT=60)
expect_exit 0 "${ux[@]}" "${redis_env[@]}" "$dropin" ExecStartPost
expect_exit 0 "$EVCTL" wait redis-ready --timeout 0
expect_stdout "127.0.0.1:$port"

check "every worker goes on and subscribes at that address with redis-cli"
wait_until "[[ \$(numsub $port) == 3 ]]" ||
        fail "$(numsub "$port") workers subscribed, want 3; worker 1: $(cat "$_SCRATCH/worker.1.err")"
run redis-cli -h 127.0.0.1 -p "$port" publish jobs job-1
expect_stdout 3
for n in 1 2 3; do
        wait_until "grep -qx job-1 '$_SCRATCH/worker.$n.out'" ||
                fail "worker $n did not receive job-1: $(cat "$_SCRATCH/worker.$n.out")"
done

check "evd-wait@redis-ready.service: READY=1 with the address, then exit 0"
bg_expect "$WAITUNIT" 0
grep -qx "READY=1|STATUS=redis-ready is set: 127.0.0.1:$port" "$_SCRATCH/wait-unit.notify" ||
        fail "no READY=1 with STATUS=redis-ready is set: 127.0.0.1:$port: $(cat "$_SCRATCH/wait-unit.notify")"

check "Redis stops cleanly; ExecStopPost= clears the event; a new worker waits again"
run redis-cli -h 127.0.0.1 -p "$port" shutdown nosave
wait_until "! alive $RPID" || fail "redis-server did not stop"
expect_exit 0 "${ux[@]}" "${redis_env[@]}" --env SERVICE_RESULT=success --env EXIT_CODE=exited \
        --env EXIT_STATUS=0 "$dropin" ExecStopPost
expect_exit 1 "$EVCTL" is-set redis-ready
worker 4
wait_until "[[ \$(waiters redis-ready) == 1 ]]" || fail "worker 4 does not wait (waiters: $(waiters redis-ready))"
sleep 0.3
alive "${W[4]}" || { bg_wait "${W[4]}"; fail "worker 4 stopped: $(bg_show "${W[4]}")"; }

check "Redis starts again; worker 4 goes on"
start_redis "$port" || fail "redis-server did not come back on port $port"
expect_exit 0 "${ux[@]}" "${redis_env[@]}" "$dropin" ExecStartPost
wait_until "[[ \$(numsub $port) == 1 ]]" || fail "worker 4 did not subscribe: $(cat "$_SCRATCH/worker.4.err")"

check "Redis crashes; ExecStopPost= fails the event; a new worker exits 3 with the reason"
rchild=$(bg_child "$RPID") || fail "cannot find redis-server under pid $RPID"
kill -KILL "$rchild"
wait "$RPID" 2>/dev/null || true # timeout(1) dies of the same signal: no job notice
expect_exit 0 "${ux[@]}" "${redis_env[@]}" --env SERVICE_RESULT=signal --env EXIT_CODE=killed \
        --env EXIT_STATUS=KILL "$dropin" ExecStopPost
worker 5
bg_expect "${W[5]}" 3
grep -qx 'evctl: redis-ready failed: redis-server.service stopped: signal (killed KILL)' "$_SCRATCH/worker.5.err" ||
        fail "worker 5 did not report the failure: $(cat "$_SCRATCH/worker.5.err")"
[[ ! -s $_SCRATCH/worker.5.out ]] || fail "worker 5 ran ExecStart= after a failed ExecStartPre="

check "a worker whose wait times out exits 1 and never runs ExecStart="
expect_exit 0 "$EVCTL" clear redis-ready
worker 6 REDIS_WAIT_TIMEOUT=500ms
bg_expect "${W[6]}" 1
grep -q 'evctl: timed out waiting for redis-ready (500ms)' "$_SCRATCH/worker.6.err" ||
        fail "worker 6: no timeout message: $(cat "$_SCRATCH/worker.6.err")"
[[ ! -s $_SCRATCH/worker.6.out ]] || fail "worker 6 ran ExecStart= after its wait timed out"
exit 0
