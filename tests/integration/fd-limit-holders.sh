#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fd-limit-holders.sh - a daemon at its descriptor limit (prlimit --nofile=64:64):
# it can open neither /proc files nor pidfds, and must still never take a
# live holder for dead ("cannot tell" is not "dead"): a live owner keeps its
# lock and nobody is told it was abandoned.  With more holders than
# descriptors, the holder watcher must not rescan at 100 % CPU: it backs off,
# says so once, checks the holders it cannot watch periodically, and a
# killed holder's hold still comes back.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_python
command -v prlimit >/dev/null 2>&1 || skip "prlimit (util-linux) is needed"

LIMIT=64
HOLDERS=100

# sleeper: a process to hold things for (--owner), our child, bounded by
# its argument and killed at exit; its pid in SLEEPER.
sleeper() {
        sleep 280 </dev/null >/dev/null 2>&1 &
        SLEEPER=$!
        _PIDS+=("$SLEEPER")
}

# kill_owner PID...: SIGKILL sleepers and reap them (a zombie is dead, but
# without a pidfd the daemon can only tell once it is reaped).
kill_owner() {
        local p
        kill -KILL "$@"
        for p in "$@"; do
                wait "$p" 2>/dev/null || true
        done
}

lock_state() { show_field "$1" state; }

# is_held NAME: the lock is held (cheaper than lock_state, for loops).
is_held() { timeout -k 1 5 "$EVCTL" show "$1" 2>/dev/null </dev/null | grep -x 'state: held' >/dev/null; }

# quick CMD...: run CMD (bounded) and fail unless it exits 0; for loops,
# where expect_exit's bookkeeping would cost more than the command.
quick() {
        timeout -k 2 "$T_CALL" "$@" </dev/null >/dev/null 2>"$_SCRATCH/quick.err" ||
                fail "$(_q "$@") failed: $(cat "$_SCRATCH/quick.err")"
}

# nfds PID: descriptors PID has open below LIMIT.
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | awk -v l=$LIMIT '$1 < l' | wc -l; }

# cpu_ticks PID: user + system time of PID, in clock ticks.
cpu_ticks() {
        local s
        s=$(cat "/proc/$1/stat") || return 1
        s=${s##*) }
        awk '{ print $12 + $13 }' <<<"$s"
}

# log_has REGEX: evd.log has a line matching REGEX (ERE).
log_has() { grep -Eq -- "$1" "$EVD_DIR/evd.log"; }

# The idle connections' client: LIMIT + 20 connections, more than evd can
# keep (past its reserve for pidfds and /proc it closes the idlest one); it
# prints how many it made, then stays idle.
cat >"$_SCRATCH/idle.py" <<'EOF'
import socket, sys, time
path, limit = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(limit + 20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    socks.append(s)
print(len(socks), flush=True)
time.sleep(250)
EOF

# fill_descriptors: more idle connections than evd has descriptors; once
# they are made, one request proves evd got past them and still serves.  The
# connections stay idle until IDLE (a bg_start pid) is killed.
fill_descriptors() {
        bg_start 280 "$PY" "$_SCRATCH/idle.py" "$EVD_DIR/evd.sock" "$LIMIT"
        IDLE=$BG_PID
        wait_until "[[ -s '$(bg_out "$IDLE")' ]] || ! alive $IDLE" 60 ||
                fail "the idle connections were not all made"
        alive "$IDLE" || fail "could not connect: $(cat "$(bg_err "$IDLE")")"
        quick "$EVCTL" list
        say "$(cat "$(bg_out "$IDLE")") idle connection(s); evd has $(nfds "$EVD_PID") descriptors open below its limit of $LIMIT"
}

# ---- idle connections use up every descriptor ---------------------------------------------

check "idle connections past the descriptor limit cannot starve the watcher: live owners keep their locks"
evd_mkdir
EVD_REAL=$EVD
EVD=$_SCRATCH/evd-limited
cat >"$EVD" <<EOF
#!/bin/sh
exec prlimit --nofile=$LIMIT:$LIMIT "$EVD_REAL" "\$@"
EOF
chmod +x "$EVD"
evd_start
grep -q "^Max open files *$LIMIT *$LIMIT " "/proc/$EVD_PID/limits" ||
        fail "evd does not run with a limit of $LIMIT descriptors: $(grep 'open files' "/proc/$EVD_PID/limits")"
# Made while the daemon can still accept a connection.
for k in 1 2 3 4 5; do
        expect_exit 0 "$EVCTL" lock acquire "L$k" --owner $$ --timeout 0
        expect_exit 0 "$EVCTL" lock release "L$k" --owner $$
done

fill_descriptors
idle=$IDLE

# Five owners take five locks.  Before evd kept descriptors in reserve for
# pidfds and /proc, the idle connections used up every one, and the watcher
# took an owner it could not read /proc for as dead and gave its lock back.
# Now evd closes the idlest connections instead; "cannot tell" must still
# never mean "dead" (the next check runs evd out of pidfds for real).
owners=()
for k in 1 2 3 4 5; do
        sleeper
        owners+=("$SLEEPER")
        expect_exit 0 "$EVCTL" lock acquire "L$k" --owner "$SLEEPER" --timeout 0
done
sleeper
expect_error 1 "L5" "$EVCTL" lock acquire L5 --owner "$SLEEPER" --timeout 1500ms
for k in 1 2 3 4 5; do
        [[ $(lock_state "L$k") == held ]] ||
                fail "lock L$k is $(lock_state "L$k"), its live owner ${owners[k - 1]} holds it"
        expect_exit 0 "$EVCTL" show "L$k"
        expect_stdout_match "^holder: pid ${owners[k - 1]}, "
done
log_has 'gave back|abandon' && fail "the daemon took a live owner for dead:
$(grep -E 'gave back|abandon' "$EVD_DIR/evd.log")"
owner=${owners[4]}

check "descriptors back: a killed owner's lock comes back, reported abandoned"
kill -TERM "$idle" 2>/dev/null
bg_wait "$idle"
kill_owner "$owner"
wait_until "[[ \$(lock_state L5) == free ]]" 15 || fail "the dead owner's lock did not come back"
expect_exit 0 "$EVCTL" lock acquire L5 --owner "$SLEEPER" --timeout 5s
expect_stderr_match 'abandoned'
expect_exit 0 "$EVCTL" lock release L5 --owner "$SLEEPER"
evd_stop

# ---- more holders than descriptors ----------------------------------------------------------------

check "$HOLDERS holders, $LIMIT descriptors: no busy loop, dead holders still come back"
rm -f "$EVD_DIR/evd.log"
evd_start
for ((k = 0; k < HOLDERS; k++)); do
        quick "$EVCTL" lock acquire "M$k" --owner $$ --timeout 0
        quick "$EVCTL" lock release "M$k" --owner $$
done
owners=()
for ((k = 0; k < HOLDERS; k++)); do
        sleeper
        owners+=("$SLEEPER")
        quick "$EVCTL" lock acquire "M$k" --owner "$SLEEPER" --timeout 0
done
# The last descriptors, if any are left, go to idle connections.
fill_descriptors
wait_until "log_has 'cannot watch holders|gave back'" 10 ||
        fail "the daemon did not run out of descriptors with $HOLDERS holders"
# The watcher has looked at every holder at the next tick: wait for two.
sleep 2.5
log_has 'gave back' && fail "the daemon gave back live owners' locks:
$(grep -E 'gave back' "$EVD_DIR/evd.log")"
n=$(grep -c 'cannot watch holders' "$EVD_DIR/evd.log")
((n == 1)) || fail "said $n times that it cannot watch holders (once is enough)"
# CPU time over a few seconds of doing nothing but holding: a generous bound
# (half the wall time) that a busy loop exceeds and a loaded machine cannot.
t0=$(date +%s%N)
c0=$(cpu_ticks "$EVD_PID")
sleep 3
c1=$(cpu_ticks "$EVD_PID")
t1=$(date +%s%N)
hz=$(getconf CLK_TCK)
pct=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v ns=$((t1 - t0)) 'BEGIN { printf "%d", 100 * c / hz / (ns / 1e9) }')
say "evd used ${pct}% of a CPU over $(((t1 - t0) / 1000000)) ms with $HOLDERS holders and $LIMIT descriptors"
((pct < 50)) || fail "evd is busy (${pct}% CPU) at its descriptor limit"
for ((k = 0; k < HOLDERS; k++)); do
        is_held "M$k" || fail "lock M$k is $(lock_state "M$k") while its owner lives"
done
log_has 'gave back' && fail "the daemon gave back live owners' locks"
# Kill the last holder (not watched through a pidfd: the daemon ran out of
# them before) and the first (watched): both locks come back.
last=$((HOLDERS - 1))
kill_owner "${owners[$last]}" "${owners[0]}"
wait_until "[[ \$(lock_state M$last) == free ]]" 15 ||
        fail "the lock of a killed holder that is not watched through a pidfd did not come back"
wait_until "[[ \$(lock_state M0) == free ]]" 15 ||
        fail "the lock of a killed holder watched through a pidfd did not come back"
for ((k = 1; k < last; k++)); do
        is_held "M$k" || fail "lock M$k is $(lock_state "M$k") while its owner lives"
done
evd_stop
