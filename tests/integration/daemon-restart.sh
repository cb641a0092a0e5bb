#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# daemon-restart.sh - state lives in the segment: events keep working while
# evd is down (kill -9), a restarted evd adopts every object, a second evd on
# the same runtime dir is refused, SIGTERM is a clean exit 0.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python

# state_table: `evctl list --json` reduced to "name type kind state [value]"
# lines (value only for set events), sorted.
state_table() {
        expect_exit 0 "$EVCTL" list --json
        "$PY" -c '
import json, sys
rows = []
for o in json.load(open(sys.argv[1])):
    r = [o["name"], o["type"], o["kind"], o["state"]]
    if o["state"] == "set":
        r.append(json.dumps(o["value"]))
    rows.append(" ".join(r))
print("\n".join(sorted(rows)))
' "$LAST_OUT_F" || fail "list --json is not the expected JSON
$(_show_last)"
}

# expect_state EXPECTED: state_table equals EXPECTED.
expect_state() {
        local got
        got=$(state_table)
        [[ $got == "$1" ]] || fail "objects differ from what was expected
--- expected:
$1
--- got:
$got
--- diff:
$(diff <(printf '%s\n' "$1") <(printf '%s\n' "$got") || true)"
}

# expect_show NAME STATE [VALUE]: `evctl show NAME` says so.
expect_show() {
        expect_exit 0 "$EVCTL" show "$1"
        grep -qx "state: $2" "$LAST_OUT_F" || fail "show $1: state is not $2
$(_show_last)"
        if (($# > 2)); then
                grep -qxF "value: $3" "$LAST_OUT_F" || fail "show $1: value is not '$3'
$(_show_last)"
        fi
}

evd_setup
seg0=$EVD_SEGMENT

check "create events in various states"
expect_exit 0 "$EVCTL" set s1 --value v1
expect_exit 0 "$EVCTL" set s2 --value "with space"
expect_exit 0 "$EVCTL" fail f1 "broken pipe"
expect_exit 0 "$EVCTL" create c1
expect_exit 0 "$EVCTL" set o1 --once --value ov
expect_exit 0 "$EVCTL" create o2 --once
expect_exit 0 "$EVCTL" create a1 --auto
expect_exit 0 "$EVCTL" set a2 --auto --value av
expect_exit 0 "$EVCTL" create m1

before='a1 event auto clear
a2 event auto set "av"
c1 event manual clear
f1 event manual failed
m1 event manual clear
o1 event once set "ov"
o2 event once clear
s1 event manual set "v1"
s2 event manual set "with space"'
expect_state "$before"

check "kill -9 the daemon"
evd_kill9
[[ -z $(daemon_pids_for "$EVD_DIR") ]] || fail "an evd still serves $EVD_DIR after kill -9"

check "while evd is down (EVD_NO_AUTOSTART=1): is-set, wait, set, clear on existing events"
export EVD_NO_AUTOSTART=1
expect_exit 0 "$EVCTL" is-set s1
expect_exit 0 "$EVCTL" wait s1 --timeout 0
expect_stdout v1
expect_exit 0 "$EVCTL" wait s2 --timeout 1s
expect_stdout "with space"
expect_error 3 '^evctl: f1 failed: broken pipe$' "$EVCTL" wait f1 --timeout 0
expect_exit 1 "$EVCTL" is-set c1
expect_exit 1 "$EVCTL" wait c1 --timeout 200ms
bg_start 300 "$EVCTL" wait c1 --timeout 240s
w=$BG_PID
sleep 0.5
alive "$w" || { bg_wait "$w"; fail "a wait on clear c1 ended by itself while evd is down
$(bg_show "$w")"; }
expect_exit 0 "$EVCTL" set c1 --value down
wait_until "! alive $w" || fail "set while evd is down did not wake the waiter within ${T_WAIT} s"
bg_expect "$w" 0 down
expect_exit 0 "$EVCTL" clear c1
expect_exit 0 "$EVCTL" set m1 --value while-down
expect_error 4 'o1' "$EVCTL" set o1 --once
check "while evd is down: creating needs the daemon (exit 5)"
expect_error 5 '' "$EVCTL" create brand-new
expect_error 5 '' "$EVCTL" wait brand-new2 --timeout 0
unset EVD_NO_AUTOSTART

check "restart evd on the same dir: it adopts the segment"
evd_start
[[ -z $seg0 || $EVD_SEGMENT == "$seg0" ]] ||
        fail "restarted evd maps $EVD_SEGMENT, not the old segment $seg0"
grep -q 'adopted' "$EVD_DIR/evd.log" || fail "evd's log does not say it adopted the segment"
if [[ -f $EVD_DIR/evd.pid ]]; then
        [[ $(tr -dc 0-9 <"$EVD_DIR/evd.pid") == "$EVD_PID" ]] ||
                fail "evd.pid holds $(cat "$EVD_DIR/evd.pid"), not the new daemon's pid $EVD_PID"
else
        fail "no evd.pid in the runtime dir"
fi
after="${before/m1 event manual clear/m1 event manual set \"while-down\"}"
expect_state "$after"
expect_show s1 set v1
expect_show s2 set "with space"
expect_show f1 failed
expect_show c1 clear
expect_show m1 set while-down
expect_show o1 set ov
expect_show o2 clear
expect_show a1 clear
expect_show a2 set av
expect_exit 0 "$EVCTL" show a2
grep -qx 'kind: auto' "$LAST_OUT_F" || fail "show a2: kind is not auto
$(_show_last)"

check "a second evd on the same runtime dir is refused"
T_CALL=5 run "$EVD" --runtime-dir "$EVD_DIR"
((LAST_RC != 124)) || fail "a second evd on $EVD_DIR kept running
$(_show_last)"
((LAST_RC == 1)) || fail "a second evd on $EVD_DIR: expected exit 1, got $LAST_RC
$(_show_last)"
[[ $(nlines "$LAST_ERR_F") == 1 ]] || fail "a second evd should print exactly one line
$(_show_last)"
expect_stderr_match 'already'
alive "$EVD_PID" || fail "the first evd died when a second one was started"
[[ -S $EVD_DIR/evd.sock ]] || fail "the refused evd removed the first one's socket"
expect_exit 0 env EVD_NO_AUTOSTART=1 "$EVCTL" create after-refuse
[[ $(daemon_pids_for "$EVD_DIR" | wc -l) == 1 ]] || fail "more than one evd serves $EVD_DIR"

check "SIGTERM: clean exit 0"
evd_stop
((EVD_EXIT == 0)) || fail "evd exited $EVD_EXIT on SIGTERM, want 0"

check "state survives another restart"
evd_start
after2=$(printf '%s\nafter-refuse event manual clear' "$after" | LC_ALL=C sort)
expect_state "$after2"
expect_error 4 'o1' "$EVCTL" set o1 --once
expect_exit 0 "$EVCTL" wait a2 --auto --timeout 0
expect_stdout av
expect_exit 1 "$EVCTL" wait a2 --auto --timeout 0
expect_error 3 '^evctl: f1 failed: broken pipe$' "$EVCTL" wait f1 --timeout 0
alive "$EVD_PID" || fail "evd died"
exit 0
