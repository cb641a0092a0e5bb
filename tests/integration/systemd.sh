#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# systemd.sh - evd as a service manager sees it: READY=1 and STATUS= on a
# NOTIFY_SOCKET only once it serves, WATCHDOG=1 pings when WATCHDOG_USEC asks
# for them, STOPPING=1 on SIGTERM; and a listening socket handed over by
# systemd-socket-activate serves evctl.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python

notify_py="$(dirname "${BASH_SOURCE[0]}")/notify.py"
evd_mkdir
log=$_SCRATCH/notify.log

check "READY=1, STATUS= and watchdog pings on NOTIFY_SOCKET"
# Without WATCHDOG_PID the watchdog request applies to whichever process
# reads it: evd, the notifier's child.
WATCHDOG_USEC=200000 "$PY" "$notify_py" 300 "$log" -- "$EVD" --runtime-dir "$EVD_DIR" \
        2>>"$EVD_DIR/evd.log" &
runner=$!
_PIDS+=("$runner")
wait_until "grep -q 'READY=1' '$log' 2>/dev/null" || fail "no READY=1 within ${T_WAIT} s"
[[ -S $EVD_DIR/evd.sock ]] || fail "READY=1 came before the socket existed"
grep 'READY=1' "$log" | grep 'STATUS=serving' >/dev/null || fail "READY=1 came without STATUS=: $(cat "$log")"
grep -q "^READY=1|STATUS=serving $EVD_DIR, [0-9]* object(s)|MAINPID=[0-9]*$" "$log" ||
        fail "READY=1 does not say what evd serves: $(cat "$log")"
expect_exit 0 "$EVCTL" set svc --value up
wait_until "(( \$(grep -c 'WATCHDOG=1' '$log') >= 3 ))" ||
        fail "fewer than 3 WATCHDOG=1 pings in ${T_WAIT} s: $(cat "$log")"
pid=$(first_daemon_pid "$EVD_DIR")
[[ -n $pid ]] || fail "no daemon found"
kill -TERM "$pid"
wait_until "grep -q 'STOPPING=1' '$log'" || fail "no STOPPING=1 after SIGTERM: $(cat "$log")"
wait "$runner" || fail "evd did not exit 0 after SIGTERM"

# evctl wait --notify-ready: the main process of a Type=notify unit that is
# ready once an event is set.
evd_start
nlog() { printf '%s' "$_SCRATCH/notify.$1.log"; }
# notify_wait TAG EVCTL-ARGS...: evctl under notify.py, in the background.
notify_wait() {
        local tag=$1
        shift
        bg_start 300 "$PY" "$notify_py" --check-barrier 250 "$(nlog "$tag")" -- "$EVCTL" "$@"
}

check "wait --notify-ready: STATUS=waiting, then READY=1 and STATUS= with the value once set"
notify_wait set wait svc-ready --notify-ready --timeout 200s
nw=$BG_PID
wait_until "grep -qx 'STATUS=waiting for svc-ready' '$(nlog set)' 2>/dev/null" ||
        fail "no STATUS=waiting for svc-ready: $(cat "$(nlog set)" 2>/dev/null)"
sleep 0.3
! grep -q READY "$(nlog set)" || fail "READY=1 before the event was set: $(cat "$(nlog set)")"
expect_exit 0 "$EVCTL" set svc-ready --value "10.0.0.7:80"
bg_expect "$nw" 0 "10.0.0.7:80"
grep -qx 'READY=1|STATUS=svc-ready is set: 10.0.0.7:80' "$(nlog set)" ||
        fail "no READY=1 with the value: $(cat "$(nlog set)")"
# READY=1 is followed by BARRIER=1 with a pipe's write end, and evctl
# exits only once the manager closes it (notify.py holds it until it sees
# evctl blocked in poll).
grep -qx 'BARRIER=1 awaited' "$(nlog set)" ||
        fail "evctl did not wait for the manager to read READY=1: $(cat "$(nlog set)")"

check "wait --notify-ready on a failed event: STATUS= says so, no READY=1, exit 3"
expect_exit 0 "$EVCTL" fail svc-broken "disk full"
notify_wait failed wait svc-broken --notify-ready --timeout 200s
bg_expect "$BG_PID" 3
grep -qx 'STATUS=svc-broken failed: disk full' "$(nlog failed)" ||
        fail "no STATUS= with the failure: $(cat "$(nlog failed)")"
! grep -q READY "$(nlog failed)" || fail "READY=1 for a failed event"

check "wait --notify-ready: STATUS= updates while waiting, no READY=1 until set"
# Progress is proved by waiting for it, not by a timeout racing it: a
# starved evctl may reach its deadline before its first progress tick.
notify_wait progress wait svc-later --notify-ready --progress 500ms --timeout 200s
nw=$BG_PID
# (The time in it is the time waited, which on a busy machine may be a bit
# more than 500ms.)
wait_until "grep -qE '^STATUS=still waiting for svc-later \([0-9.]+m?s\)$' '$(nlog progress)' 2>/dev/null" ||
        fail "no progress in STATUS=: $(cat "$(nlog progress)" 2>/dev/null)"
! grep -q READY "$(nlog progress)" || fail "READY=1 before the event was set: $(cat "$(nlog progress)")"
expect_exit 0 "$EVCTL" set svc-later
bg_expect "$nw" 0

check "wait --notify-ready that times out: STATUS= says so, no READY=1, exit 1"
notify_wait timeout wait svc-never --notify-ready --timeout 300ms --progress 100ms
bg_expect "$BG_PID" 1
grep -qx 'STATUS=timed out waiting for svc-never' "$(nlog timeout)" ||
        fail "no timeout in STATUS=: $(cat "$(nlog timeout)")"
! grep -q READY "$(nlog timeout)" || fail "READY=1 after a timeout"

check "wait --any --notify-ready names the event that fired"
expect_exit 0 "$EVCTL" set svc-b --value vb
notify_wait any wait --any svc-a svc-b --notify-ready --timeout 200s
bg_expect "$BG_PID" 0
grep -qx 'READY=1|STATUS=svc-b is set: vb' "$(nlog any)" || fail "wrong READY=1: $(cat "$(nlog any)")"

check "wait --notify-ready on an abstract NOTIFY_SOCKET (@name), READY=1 awaited through BARRIER=1"
bg_start 300 "$PY" "$notify_py" --abstract --check-barrier 250 "$(nlog abstract)" -- \
        "$EVCTL" wait svc-abstract --notify-ready --timeout 200s
nw=$BG_PID
wait_until "grep -qx 'STATUS=waiting for svc-abstract' '$(nlog abstract)' 2>/dev/null" ||
        fail "no STATUS=waiting on the abstract socket: $(cat "$(nlog abstract)" 2>/dev/null)"
expect_exit 0 "$EVCTL" set svc-abstract --value "abs"
bg_expect "$nw" 0 "abs"
grep -qx 'READY=1|STATUS=svc-abstract is set: abs' "$(nlog abstract)" ||
        fail "no READY=1 on the abstract socket: $(cat "$(nlog abstract)")"
grep -qx 'BARRIER=1 awaited' "$(nlog abstract)" ||
        fail "no barrier awaited on the abstract socket: $(cat "$(nlog abstract)")"

check "without NOTIFY_SOCKET --notify-ready only waits; it is refused where it does not belong"
expect_exit 0 env -u NOTIFY_SOCKET "$EVCTL" wait svc-ready --notify-ready --timeout 0
expect_stdout "10.0.0.7:80"
expect_no_stderr
expect_error 2 'notify-ready' "$EVCTL" set svc-ready --notify-ready

check "a NOTIFY_SOCKET that cannot be used: one line on stderr per message, the wait unharmed"
long=/tmp/$(printf 'x%.0s' {1..120})
for bad in relative/notify /nonexistent-evd-dir/notify @ vsock:2:1234 "$long"; do
        expect_exit 0 env NOTIFY_SOCKET="$bad" "$EVCTL" wait svc-ready --notify-ready --timeout 0
        expect_stdout "10.0.0.7:80"
        [[ -s $LAST_ERR_F ]] || fail "NOTIFY_SOCKET=$bad: no message on stderr"
        ! grep -v '^evctl: cannot tell the service manager (\(STATUS=\|READY=1\)): ' "$LAST_ERR_F" ||
                fail "NOTIFY_SOCKET=$bad: unexpected stderr
$(_show_last)"
done
evd_stop

check "a socket passed by systemd-socket-activate serves evctl"
command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is not installed"
rm -f "$EVD_DIR/evd.sock"
systemd-socket-activate --seqpacket -l "$EVD_DIR/evd.sock" -- "$EVD" --runtime-dir "$EVD_DIR" \
        2>>"$EVD_DIR/evd.log" &
_PIDS+=("$!")
wait_until "[[ -S '$EVD_DIR/evd.sock' ]]" || fail "systemd-socket-activate did not listen"
# The first connection starts evd with the socket; it must keep the state.
expect_exit 0 "$EVCTL" wait svc --timeout 30s
expect_stdout "up"
expect_exit 0 "$EVCTL" set activated --value yes
expect_exit 0 "$EVCTL" list
expect_stdout_match '^activated +event'
grep -q 'using the socket passed by the service manager' "$EVD_DIR/evd.log" ||
        fail "evd did not use the inherited socket; log: $(tail -n 5 "$EVD_DIR/evd.log")"

check "a socket-activated evd refuses a socket that is not its namespace's, naming both, and touches nothing"
# Another directory's socket, handed to an evd that serves EVD_DIR (as an
# evd without EVD_RUNTIME_DIR would serve /run/evd): it must not answer for
# EVD_DIR's segment on it.
ns=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-ns.XXXXXX")
_DIRS+=("$ns")
mine=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-mine.XXXXXX")
_DIRS+=("$mine")
bg_start 60 systemd-socket-activate --seqpacket -l "$ns/evd.sock" -- "$EVD" --runtime-dir "$mine"
act=$BG_PID
wait_until "[[ -S '$ns/evd.sock' ]]" 5 || fail "systemd-socket-activate did not listen"
# The first connection starts evd, which refuses and exits; the client then
# finds nobody (no autostart) and exits 5.
expect_error 5 '' env EVD_RUNTIME_DIR="$ns" EVD_NO_AUTOSTART=1 "$EVCTL" create wrong
bg_expect "$act" 1
grep -q "socket passed by the service manager is $ns/evd.sock, not $mine/evd.sock" "$(bg_err "$act")" ||
        fail "evd's refusal does not name both sockets
$(bg_show "$act")"
[[ -z $(ls -A "$mine") ]] || fail "evd made files in $mine before refusing: $(ls -A "$mine")"
say "ok"
