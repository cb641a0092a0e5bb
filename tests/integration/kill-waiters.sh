#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kill-waiters.sh - waiters killed (SIGKILL) or interrupted (SIGINT) while
# blocked leave nothing wedged: set still wakes everyone else, later waits and
# set/clear cycles work, and the waiter count forgets the dead.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python

# list_waiters NAME: waiter count of NAME in `evctl list --json`.
list_waiters() {
        timeout -k 1 5 "$EVCTL" list --json 2>/dev/null </dev/null |
                "$PY" -c '
import json, sys
for o in json.load(sys.stdin):
    if o.get("name") == sys.argv[1]:
        print(o.get("waiters"))
' "$1" 2>/dev/null || true
}

# table_waiters NAME: the WAITERS column of NAME in the `evctl list` table.
table_waiters() {
        timeout -k 1 5 "$EVCTL" list 2>/dev/null </dev/null |
                awk -v n="$1" '
NR == 1 { for (i = 1; i <= NF; i++) if ($i == "WAITERS") c = i; next }
$1 == n && c { print $c; exit }' || true
}

# expect_waiters NAME N: show, list --json and the list table agree on N
# (polled: dead waiters may be noticed lazily).
expect_waiters() {
        local name=$1 n=$2
        wait_until "[[ \$(waiters $name) == $n ]]" ||
                fail "'evctl show $name' reports $(waiters "$name") waiters, want $n"
        wait_until "[[ \$(list_waiters $name) == $n ]]" ||
                fail "'evctl list --json' reports $(list_waiters "$name") waiters for $name, want $n"
        wait_until "[[ \$(table_waiters $name) == $n ]]" ||
                fail "'evctl list' table reports $(table_waiters "$name") waiters for $name, want $n"
}

evd_setup
expect_exit 0 "$EVCTL" create k

check "5 waiters block on k"
keep=()
for _ in 1 2 3; do
        bg_start 300 "$EVCTL" wait k --timeout 240s
        keep+=("$BG_PID")
done
bg_start 300 "$EVCTL" wait k --timeout 240s
vk=$BG_PID
bg_start 300 "$EVCTL" wait k --timeout 240s
vi=$BG_PID
expect_waiters k 5

check "SIGKILL one waiter, SIGINT another, while they block"
ck=$(bg_child "$vk") || fail "no evctl under timeout $vk"
ci=$(bg_child "$vi") || fail "no evctl under timeout $vi"
kill -KILL "$ck"
kill -INT "$ci"
wait_until "! alive $vk" || fail "the SIGKILLed waiter is still there"
wait_until "! alive $vi" || fail "the waiter did not stop within ${T_WAIT} s of SIGINT"
bg_wait "$vi"
say "interrupted waiter exited with $BG_RC"
((BG_RC != 0)) || fail "an interrupted wait exited 0 (success) without the event being set"
(($(nlines "$(bg_err "$vi")") <= 1)) || fail "interrupted waiter printed more than one line
$(bg_show "$vi")"
for p in "${keep[@]}"; do
        alive "$p" || { bg_wait "$p"; fail "a waiter that was not signalled has ended
$(bg_show "$p")"; }
done

check "the waiter count forgets the dead (show, list --json, list)"
expect_waiters k 3

check "set wakes every remaining waiter"
expect_exit 0 "$EVCTL" set k --value hello
for p in "${keep[@]}"; do
        wait_until "! alive $p" || fail "a remaining waiter was not woken by set within ${T_WAIT} s"
        bg_expect "$p" 0 hello
done
expect_waiters k 0

check "new waits work"
expect_exit 0 "$EVCTL" wait k --timeout 0
expect_stdout hello

check "clear/set cycles work after the deaths"
for i in 1 2 3 4 5; do
        expect_exit 0 "$EVCTL" clear k
        expect_exit 1 "$EVCTL" wait k --timeout 0
        bg_start 300 "$EVCTL" wait k --timeout 240s
        w=$BG_PID
        expect_waiters k 1
        expect_exit 0 "$EVCTL" set k --value "c$i"
        wait_until "! alive $w" || fail "cycle $i: waiter not woken within ${T_WAIT} s"
        bg_expect "$w" 0 "c$i"
done
expect_waiters k 0

check "auto event: a SIGKILLed waiter does not swallow the one release"
expect_exit 0 "$EVCTL" create ak --auto
bg_start 300 "$EVCTL" wait ak --auto --timeout 240s
dead=$BG_PID
bg_start 300 "$EVCTL" wait ak --auto --timeout 240s
live=$BG_PID
expect_waiters ak 2
cd_=$(bg_child "$dead") || fail "no evctl under timeout $dead"
kill -KILL "$cd_"
wait_until "! alive $dead" || fail "the SIGKILLed waiter is still there"
expect_exit 0 "$EVCTL" set ak --value one
wait_until "! alive $live" || fail "set on auto event ak did not release the live waiter within ${T_WAIT} s (the dead one swallowed it?)"
bg_expect "$live" 0 one
expect_exit 1 "$EVCTL" wait ak --auto --timeout 0
expect_waiters ak 0

check "SIGINT during wait --any leaves the events usable"
bg_start 300 "$EVCTL" wait --any m1 m2 --timeout 240s
wa=$BG_PID
bg_start 300 "$EVCTL" wait --any m1 m2 --timeout 240s
wb=$BG_PID
wait_until "(( \$(waiters m1) + \$(waiters m2) == 2 ))" ||
        fail "2 wait --any m1 m2 do not show as waiters (m1: $(waiters m1), m2: $(waiters m2))"
ca=$(bg_child "$wa") || fail "no evctl under timeout $wa"
kill -INT "$ca"
wait_until "! alive $wa" || fail "wait --any did not stop within ${T_WAIT} s of SIGINT"
expect_exit 0 "$EVCTL" set m2 --value two
wait_until "! alive $wb" || fail "wait --any not woken within ${T_WAIT} s"
bg_expect "$wb" 0
printf 'm2\ntwo\n' | cmp -s - "$(bg_out "$wb")" || fail "wait --any printed the wrong thing
$(bg_show "$wb")"
alive "$EVD_PID" || fail "evd died"
exit 0
