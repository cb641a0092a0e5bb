#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# stopped-daemon.sh - a daemon that is alive but stopped (SIGSTOP) turns no
# error into a hang: a request fails within its deadline with exit 5, "not
# responding", naming the daemon's pid and socket; hundreds of parallel
# requests, more than the socket's backlog, all end the same way (none hangs
# in connect()); and a blocked acquirer takes back the slot of a holder that
# was killed meanwhile, as it does when no daemon runs at all.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The requests below each wait for their deadline (10 s), however busy the
# machine: bound them generously.
T_CALL=60

evd_setup
# Whatever happens, never leave the daemon stopped: continue it before the
# usual clean-up, which reads the script's exit status from $? (set +e
# first: under errexit the failing "(exit 1)" would end the trap there).
trap 'rc_=$?; set +e; kill -CONT "$EVD_PID" 2>/dev/null; (exit $rc_); _cleanup' EXIT

expect_exit 0 "$EVCTL" sem create slots --max 1
bg_start 200 sleep 1000
holder=$(bg_child "$BG_PID") || fail "no holder process"
expect_exit 0 "$EVCTL" sem acquire slots --owner "$holder"

kill -STOP "$EVD_PID"
wait_until "[[ \$(_pstate $EVD_PID) == T ]]" 5 || fail "evd did not stop"

check "create against a stopped daemon: exit 5, 'not responding', with its pid and socket"
expect_error 5 "cannot create late: the daemon \(pid $EVD_PID\) is not responding on $EVD_DIR/evd.sock" \
        "$EVCTL" create late

check "250 parallel creates, more than the backlog: every one exits 5, none hangs in connect()"
pids=()
for i in $(seq 250); do
        bg_start 120 "$EVCTL" create "many-$i"
        pids+=("$BG_PID")
done
for p in "${pids[@]}"; do
        bg_expect "$p" 5
        grep -q 'is not responding' "$(bg_err "$p")" || fail "a parallel create failed otherwise
$(bg_show "$p")"
done

check "a blocked acquirer reclaims the slot of a killed holder while the daemon is stopped"
bg_start 120 "$EVCTL" sem acquire slots --owner $$ --timeout 60s
acq=$BG_PID
kill -KILL "$holder"
bg_expect "$acq" 0
[[ $(_pstate "$EVD_PID") == T ]] || fail "the daemon was no longer stopped when the slot came back"
expect_exit 0 "$EVCTL" sem release slots --owner $$

check "once continued, the daemon serves again"
kill -CONT "$EVD_PID"
expect_exit 0 "$EVCTL" create after
expect_exit 0 "$EVCTL" sem value slots
expect_stdout 1
exit 0
