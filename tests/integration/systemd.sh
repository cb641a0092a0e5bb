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
WATCHDOG_USEC=200000 "$PY" "$notify_py" 20 "$log" -- "$EVD" --runtime-dir "$EVD_DIR" \
        2>>"$EVD_DIR/evd.log" &
runner=$!
_PIDS+=("$runner")
wait_until "grep -q 'READY=1' '$log' 2>/dev/null" 5 || fail "no READY=1 within 5 s"
[[ -S $EVD_DIR/evd.sock ]] || fail "READY=1 came before the socket existed"
grep 'READY=1' "$log" | grep -q 'STATUS=serving' || fail "READY=1 came without STATUS=: $(cat "$log")"
expect_exit 0 "$EVCTL" set svc --value up
wait_until "(( \$(grep -c 'WATCHDOG=1' '$log') >= 3 ))" 5 ||
        fail "fewer than 3 WATCHDOG=1 pings in a second: $(cat "$log")"
pid=$(first_daemon_pid "$EVD_DIR")
[[ -n $pid ]] || fail "no daemon found"
kill -TERM "$pid"
wait_until "grep -q 'STOPPING=1' '$log'" 5 || fail "no STOPPING=1 after SIGTERM: $(cat "$log")"
wait "$runner" || fail "evd did not exit 0 after SIGTERM"

check "a socket passed by systemd-socket-activate serves evctl"
command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is not installed"
rm -f "$EVD_DIR/evd.sock"
systemd-socket-activate --seqpacket -l "$EVD_DIR/evd.sock" -- "$EVD" --runtime-dir "$EVD_DIR" \
        2>>"$EVD_DIR/evd.log" &
_PIDS+=("$!")
wait_until "[[ -S '$EVD_DIR/evd.sock' ]]" 5 || fail "systemd-socket-activate did not listen"
# The first connection starts evd with the socket; it must keep the state.
expect_exit 0 "$EVCTL" wait svc --timeout 5s
expect_stdout "up"
expect_exit 0 "$EVCTL" set activated --value yes
expect_exit 0 "$EVCTL" list
expect_stdout_match '^activated +event'
grep -q 'using the socket passed by the service manager' "$EVD_DIR/evd.log" ||
        fail "evd did not use the inherited socket; log: $(tail -n 5 "$EVD_DIR/evd.log")"
say "ok"
