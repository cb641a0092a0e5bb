#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# events.sh - event semantics through evctl: no lost wake-ups, manual, once,
# auto, wait --any/--all, --progress, fail, values, auto-create, delete
# while waited on, watch, list/show --json.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python

# blocked NAME N: wait until show reports N waiters on NAME.
blocked() {
        wait_until "[[ \$(waiters $1) == $2 ]]" 2>/dev/null ||
                fail "show $1 reports $(waiters "$1") waiters, want $2"
}

# auto_waiters: three background waiters (their pids in aw) blocked on the
# auto event au.
auto_waiters() {
        aw=()
        for _ in 1 2 3; do
                bg_start 300 "$EVCTL" wait au --auto --timeout 240s
                aw+=("$BG_PID")
        done
        blocked au 3
}

ISO='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.,]+(Z|[+-][0-9:]+)?'

evd_setup

check "no lost wake-ups: blocked waiters succeed when set is followed at once by clear (20 rounds)"
expect_exit 0 "$EVCTL" create lw
for i in $(seq 1 20); do
        bg_start 300 "$EVCTL" wait lw --timeout 240s
        w1=$BG_PID
        bg_start 300 "$EVCTL" wait lw --timeout 240s
        w2=$BG_PID
        blocked lw 2
        timeout -k 1 "$T_CALL" "$EVCTL" set lw --value "r$i" && timeout -k 1 "$T_CALL" "$EVCTL" clear lw ||
                fail "round $i: set+clear failed"
        for w in "$w1" "$w2"; do
                wait_until "! alive $w" || fail "round $i: a blocked waiter missed set+clear (still waiting after ${T_WAIT} s)"
                bg_expect "$w" 0
                out=$(cat "$(bg_out "$w")")
                [[ $out == "r$i" || -z $out ]] || fail "round $i: waiter printed '$out', want 'r$i' (or nothing)"
        done
done
expect_exit 1 "$EVCTL" is-set lw

check "manual event stays set"
expect_exit 0 "$EVCTL" set m --value mv
for _ in 1 2 3; do
        expect_exit 0 "$EVCTL" wait m --timeout 0
        expect_stdout mv
done
sleep 0.3
expect_exit 0 "$EVCTL" is-set m
expect_exit 0 "$EVCTL" set m --value mv2
expect_exit 0 "$EVCTL" wait m --timeout 0
expect_stdout mv2

check "--once: set, stays set, second set refused (4), clear re-arms"
expect_exit 0 "$EVCTL" set o --once --value 1
expect_exit 0 "$EVCTL" wait o --timeout 0
expect_stdout 1
expect_exit 0 "$EVCTL" wait o --once --timeout 0
expect_stdout 1
expect_error 4 'o' "$EVCTL" set o --once --value again
expect_exit 0 "$EVCTL" wait o --timeout 0
expect_stdout 1
expect_exit 0 "$EVCTL" clear o
expect_exit 0 "$EVCTL" set o --once --value 2
expect_exit 0 "$EVCTL" wait o --timeout 0
expect_stdout 2

check "--auto: each set releases exactly one of 3 blocked waiters"
expect_exit 0 "$EVCTL" create au --auto
auto_waiters
for k in 1 2 3; do
        expect_exit 0 "$EVCTL" set au --auto --value "a$k"
        wait_until "[[ \$(n_ended ${aw[*]}) -ge $k ]]" || fail "set #$k on au released nobody within ${T_WAIT} s"
        sleep 0.4
        n=$(n_ended "${aw[@]}")
        ((n == k)) || fail "after $k sets on auto event au, $n waiters were released"
done
for p in "${aw[@]}"; do
        bg_expect "$p" 0
done
vals=$(cat "$(bg_out "${aw[0]}")" "$(bg_out "${aw[1]}")" "$(bg_out "${aw[2]}")" | LC_ALL=C sort | tr '\n' ' ')
[[ $vals == "a1 a2 a3 " ]] || fail "auto waiters got values '$vals', want a1 a2 a3"
expect_exit 1 "$EVCTL" is-set au
check "--auto: a set with nobody waiting releases the next waiter only"
expect_exit 0 "$EVCTL" set au --auto --value next
expect_exit 0 "$EVCTL" wait au --auto --timeout 0
expect_stdout next
expect_exit 1 "$EVCTL" wait au --auto --timeout 0
check "--auto: two quick sets release exactly two of 3 blocked waiters"
auto_waiters
expect_exit 0 "$EVCTL" set au --auto
expect_exit 0 "$EVCTL" set au --auto
wait_until "[[ \$(n_ended ${aw[*]}) -ge 2 ]]" || fail "two sets on au released $(n_ended "${aw[@]}") waiters within ${T_WAIT} s, want 2"
sleep 0.4
n=$(n_ended "${aw[@]}")
((n == 2)) || fail "two sets on au released $n waiters, want 2"
expect_exit 0 "$EVCTL" set au --auto
wait_until "[[ \$(n_ended ${aw[*]}) -ge 3 ]]" || fail "third set on au released nobody"
for p in "${aw[@]}"; do
        bg_expect "$p" 0
done

check "wait --any prints the event that fired (and its value)"
bg_start 300 "$EVCTL" wait --any ya yb yc --timeout 240s
w=$BG_PID
wait_until "(( \$(waiters ya) + \$(waiters yb) + \$(waiters yc) == 1 ))" ||
        fail "wait --any ya yb yc does not show as a waiter"
alive "$w" || { bg_wait "$w"; fail "wait --any returned before anything was set
$(bg_show "$w")"; }
expect_exit 0 "$EVCTL" set yb --value vb
wait_until "! alive $w" || fail "wait --any not woken within ${T_WAIT} s"
bg_expect "$w" 0
printf 'yb\nvb\n' | cmp -s - "$(bg_out "$w")" || fail "wait --any should print 'yb' then 'vb'
$(bg_show "$w")"
expect_exit 0 "$EVCTL" set zb
expect_exit 0 "$EVCTL" wait --any za zb --timeout 0
expect_stdout zb
expect_exit 1 "$EVCTL" wait --any za zc --timeout 0
expect_no_stdout

check "wait --all returns only after every event is set"
bg_start 300 "$EVCTL" wait --all xa xb --timeout 240s
w=$BG_PID
wait_until "(( \$(waiters xa) + \$(waiters xb) == 1 ))" || fail "wait --all xa xb does not show as a waiter"
expect_exit 0 "$EVCTL" set xa
sleep 0.5
alive "$w" || { bg_wait "$w"; fail "wait --all xa xb returned with only xa set
$(bg_show "$w")"; }
expect_exit 0 "$EVCTL" set xb
wait_until "! alive $w" || fail "wait --all not done within ${T_WAIT} s of the last set"
bg_expect "$w" 0
[[ ! -s $(bg_out "$w") ]] || fail "wait --all printed something
$(bg_show "$w")"
expect_exit 0 "$EVCTL" clear xb
expect_exit 1 "$EVCTL" wait --all xa xb --timeout 200ms

check "--progress 200ms prints 'still waiting for NAME' lines on stderr"
# Proved by waiting for three lines, not by counting the lines a timeout
# leaves room for: a starved evctl may sleep through several ticks.
bg_start 300 "$EVCTL" wait pg --timeout 240s --progress 200ms
w=$BG_PID
wait_until "(( \$(grep -cE '^evctl: still waiting for pg( |\$)' '$(bg_err "$w")') >= 3 ))" ||
        fail "wait --progress 200ms printed fewer than 3 progress lines in ${T_WAIT} s
$(bg_show "$w")"
expect_exit 0 "$EVCTL" set pg --value done
bg_expect "$w" 0 done
grep -vE '^evctl: still waiting for pg \([0-9.]+(ms|s|m)\)$' "$(bg_err "$w")" &&
        fail "wait --progress printed something else on stderr
$(bg_show "$w")"
T_CALL=60 expect_exit 1 "$EVCTL" wait pg2 --timeout 300ms --progress 100ms
expect_no_stdout

check "fail: seen by current and later waiters until clear"
expect_exit 0 "$EVCTL" create fl
bg_start 300 "$EVCTL" wait fl --timeout 240s
w=$BG_PID
blocked fl 1
expect_exit 0 "$EVCTL" fail fl "disk on fire"
wait_until "! alive $w" || fail "fail did not wake the waiter within ${T_WAIT} s"
bg_expect "$w" 3
[[ $(nlines "$(bg_err "$w")") == 1 ]] && grep -qx 'evctl: fl failed: disk on fire' "$(bg_err "$w")" ||
        fail "the failed waiter should print exactly 'evctl: fl failed: disk on fire'
$(bg_show "$w")"
expect_error 3 '^evctl: fl failed: disk on fire$' "$EVCTL" wait fl --timeout 0
expect_error 3 '^evctl: fl failed: disk on fire$' "$EVCTL" wait fl --timeout 1s
expect_exit 1 "$EVCTL" is-set fl
expect_exit 0 "$EVCTL" show fl
grep -qx 'state: failed' "$LAST_OUT_F" || fail "show fl does not say failed
$(_show_last)"
expect_exit 0 "$EVCTL" clear fl
expect_exit 1 "$EVCTL" wait fl --timeout 0
expect_exit 0 "$EVCTL" set fl --value ok
expect_exit 0 "$EVCTL" wait fl --timeout 0
expect_stdout ok

check "values round-trip: spaces, newlines, quotes, 1024 and 4096 bytes, empty, leading dash"
vals=(
        $'hello world\n  second line\twith tab'
        "quotes \"double\" 'single' \$(not run) \\ * ?"
        "$(rand_str 1024)"
        "$(head -c 1024 /dev/urandom | base64 -w 60)"
        "$(rand_str 4096)"
        "-dash"
        ""
        $'trailing newline\n'
)
i=0
for v in "${vals[@]}"; do
        i=$((i + 1))
        expect_exit 0 "$EVCTL" set "val$i" --value "$v"
        expect_exit 0 "$EVCTL" wait "val$i" --timeout 0
        if [[ -z $v ]]; then
                # "value plus newline": for an empty value, either nothing
                # or a bare newline is accepted (the contract is ambiguous)
                [[ $(wc -c <"$LAST_OUT_F") -le 1 && $LAST_OUT == "" ]] ||
                        fail "an empty value printed something
$(_show_last)"
        else
                expect_stdout "$v"
        fi
done
check "values round-trip through list --json / show --json"
expect_exit 0 "$EVCTL" list --json
"$PY" - "$LAST_OUT_F" "${vals[@]}" <<'EOF' || fail "list --json values do not round-trip"
import json, sys
objs = {o["name"]: o for o in json.load(open(sys.argv[1]))}
for i, v in enumerate(sys.argv[2:], 1):
    got = objs["val%d" % i]["value"]
    if got != v:
        sys.exit("val%d: %r != %r" % (i, got[:80], v[:80]))
EOF
expect_exit 0 "$EVCTL" show val1 --json
"$PY" - "$LAST_OUT_F" "${vals[0]}" <<'EOF' || fail "show --json value does not round-trip
$(_show_last)"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["value"] == sys.argv[2], o
EOF

check "wait auto-creates a missing event (manual, clear)"
expect_error 4 'newev' "$EVCTL" show newev
expect_exit 1 "$EVCTL" wait newev --timeout 0
expect_exit 0 "$EVCTL" show newev
grep -qx 'kind: manual' "$LAST_OUT_F" && grep -qx 'state: clear' "$LAST_OUT_F" ||
        fail "the auto-created event is not a clear manual event
$(_show_last)"

check "delete while a waiter blocks: the waiter exits 4"
expect_exit 0 "$EVCTL" create dl
bg_start 300 "$EVCTL" wait dl --timeout 240s
w=$BG_PID
blocked dl 1
expect_exit 0 "$EVCTL" delete dl
wait_until "! alive $w" || fail "the waiter on a deleted event did not end within ${T_WAIT} s"
bg_expect "$w" 4
[[ $(nlines "$(bg_err "$w")") == 1 ]] && grep -qE '^evctl: .*dl.*deleted' "$(bg_err "$w")" ||
        fail "the waiter on a deleted event should say it was deleted, in one line
$(bg_show "$w")"
expect_error 4 'dl' "$EVCTL" show dl
expect_error 4 'dl' "$EVCTL" delete dl

check "watch --count 3 sees set, clear and fail"
expect_exit 0 "$EVCTL" create wa
bg_start 300 "$EVCTL" watch wa --count 3
w=$BG_PID
# Handshake: watch has taken its first look once it sleeps on the change
# counter; after each change, wait for its line before the next one.
watching() { local c; c=$(bg_child "$w") && wait_until "in_futex $c" || fail "watch did not start watching"; }
lines_of() { wait_until "(( \$(nlines '$(bg_out "$w")') >= $1 ))" || fail "watch printed no line for change $1
$(bg_show "$w")"; }
watching
expect_exit 0 "$EVCTL" set wa --value x
lines_of 1
expect_exit 0 "$EVCTL" clear wa
lines_of 2
expect_exit 0 "$EVCTL" fail wa "oops msg"
wait_until "! alive $w" || fail "watch --count 3 did not end within ${T_WAIT} s of 3 changes
$(bg_show "$w")"
bg_expect "$w" 0
wo=$(bg_out "$w")
[[ $(nlines "$wo") == 3 ]] &&
        sed -n 1p "$wo" | grep -E "^$ISO wa set x\$" >/dev/null &&
        sed -n 2p "$wo" | grep -E "^$ISO wa clear\$" >/dev/null &&
        sed -n 3p "$wo" | grep -E "^$ISO wa failed oops msg\$" >/dev/null ||
        fail "watch output is not 'TIME wa set x' / 'TIME wa clear' / 'TIME wa failed oops msg'
$(bg_show "$w")"
check "watch (all names) --count 2 sees created and deleted"
bg_start 300 "$EVCTL" watch --count 2
w=$BG_PID
watching
expect_exit 0 "$EVCTL" create wb
lines_of 1
expect_exit 0 "$EVCTL" delete wb
wait_until "! alive $w" || fail "watch --count 2 did not end within ${T_WAIT} s
$(bg_show "$w")"
bg_expect "$w" 0
wo=$(bg_out "$w")
[[ $(nlines "$wo") == 2 ]] &&
        sed -n 1p "$wo" | grep -E "^$ISO wb created\$" >/dev/null &&
        sed -n 2p "$wo" | grep -E "^$ISO wb deleted\$" >/dev/null ||
        fail "watch output is not 'TIME wb created' / 'TIME wb deleted'
$(bg_show "$w")"

check "list --json and show --json are valid JSON with the contract's keys; list has its header"
expect_exit 0 "$EVCTL" list --json
"$PY" -m json.tool "$LAST_OUT_F" >/dev/null || fail "list --json is not valid JSON
$(_show_last)"
"$PY" - "$LAST_OUT_F" <<'EOF' || fail "list --json does not have the contract's shape"
import base64, json, sys
objs = json.load(open(sys.argv[1]))
assert isinstance(objs, list) and objs, "not a non-empty array"
keys = {"name", "type", "kind", "state", "waiters", "sets", "changed", "value", "value_base64"}
for o in objs:
    assert keys <= set(o), "missing keys %s in %r" % (keys - set(o), o)
    assert o["type"] == "event", o
    assert o["kind"] in ("manual", "once", "auto"), o
    assert o["state"] in ("clear", "set", "failed"), o
    assert isinstance(o["waiters"], int) and isinstance(o["sets"], int), o
    assert isinstance(o["changed"], str) and isinstance(o["value_base64"], str), o
    # value: text, or null when the bytes are not UTF-8 (none are here)
    assert isinstance(o["value"], str), o
    assert base64.b64decode(o["value_base64"]) == o["value"].encode(), o
    if o["state"] == "clear":
        assert o["value"] == "" and o["value_base64"] == "", o
names = [o["name"] for o in objs]
assert names == sorted(names), "not sorted by name"
byname = {o["name"]: o for o in objs}
assert byname["m"]["state"] == "set" and byname["m"]["value"] == "mv2", byname["m"]
assert byname["o"]["kind"] == "once", byname["o"]
assert byname["au"]["kind"] == "auto", byname["au"]
assert byname["fl"]["state"] == "set", byname["fl"]
assert byname["wa"]["state"] == "failed", byname["wa"]
EOF
expect_exit 0 "$EVCTL" show m --json
"$PY" -m json.tool "$LAST_OUT_F" >/dev/null || fail "show --json is not valid JSON
$(_show_last)"
expect_exit 0 "$EVCTL" show m
for k in name type kind state waiters sets changed value; do
        grep -q "^$k: " "$LAST_OUT_F" || fail "show m has no '$k:' line
$(_show_last)"
done
grep -qx 'name: m' "$LAST_OUT_F" && grep -qx 'value: mv2' "$LAST_OUT_F" || fail "show m is wrong
$(_show_last)"
expect_exit 0 "$EVCTL" list
[[ $(head -n 1 "$LAST_OUT_F" | tr -s ' \t' ' ' | sed 's/ $//') == "NAME TYPE KIND STATE WAITERS VALUE" ]] ||
        fail "list table header is not 'NAME TYPE KIND STATE WAITERS VALUE'
$(_show_last)"
grep -qE '^m[[:space:]]+event[[:space:]]+manual[[:space:]]+set[[:space:]]+0[[:space:]]+mv2' "$LAST_OUT_F" ||
        fail "list table has no row 'm event manual set 0 mv2'
$(_show_last)"
alive "$EVD_PID" || fail "evd died"
exit 0
