#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# evctl-input.sh - evctl checks everything it was given before it changes
# anything, and says which limit was broken: counts are plain decimal
# digits within their range, --value and --value-file exclude each other,
# wait --any/--all over more names than it can wait for, or over an object
# of another type or kind, creates none of them.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# exists NAME: `evctl show NAME` finds it.
exists() { timeout -k 1 5 "$EVCTL" show "$1" >/dev/null 2>&1 </dev/null; }

evd_setup

check "counts: only plain decimal digits, the message names the option, the text and the range"
for bad in ' 1' '+1' '1 ' '-1' '0x10' '1e3' '' ' ' $'1\n' '１' '2147483648' '99999999999999999999999'; do
        expect_error 2 "--max needs a number from 1 to 2147483647, not '" "$EVCTL" sem create sx --max "$bad"
        expect_error 2 "--max" "$EVCTL" sem acquire sx --max "$bad"
        expect_error 2 "--max" "$EVCTL" sem run sx --max "$bad" true
        expect_error 2 "--initial needs a number from 0 to 2147483647, not '" "$EVCTL" sem create sx --max 2 --initial "$bad"
        expect_error 2 "--owner needs a number from 1 to 2147483647, not '" "$EVCTL" sem acquire sx --owner "$bad"
        expect_error 2 "--owner" "$EVCTL" lock release lx --owner "$bad"
        expect_error 2 "--parties needs a number from 1 to 4096, not '" "$EVCTL" barrier wait bx --parties "$bad"
        expect_error 2 "--count needs a number from 1 to 2147483647, not '" "$EVCTL" watch --count "$bad"
done
expect_error 2 "--max needs a number from 1 to 2147483647, not ' 1'" "$EVCTL" sem create sx --max ' 1'
expect_error 2 "--max needs a number from 1 to 2147483647, not '\+1'" "$EVCTL" sem create sx --max +1
expect_error 2 "--max.*not '0'" "$EVCTL" sem create sx --max 0
expect_error 2 "--parties.*not '0'" "$EVCTL" barrier wait bx --parties 0
expect_error 2 "--count.*not '0'" "$EVCTL" watch --count 0
exists sx && fail "a refused sem create made sx"
exists bx && fail "a refused barrier wait made bx"
check "counts at their limits are taken"
expect_exit 0 "$EVCTL" sem create s1 --max 2147483647 --initial 0
expect_exit 0 "$EVCTL" sem create s2 --max 007 --initial 00
expect_exit 0 "$EVCTL" show s2
expect_stdout_match '^state: 0/7 free$'
expect_exit 1 "$EVCTL" barrier wait b4096 --parties 4096 --timeout 0
expect_exit 0 "$EVCTL" watch --count 2147483647 --timeout 0

check "barrier wait --parties 5000 names the limit (4096)"
expect_error 2 "4096" "$EVCTL" barrier wait b5000 --parties 5000
exists b5000 && fail "barrier wait --parties 5000 made b5000"

check "--value and --value-file exclude each other (and neither may be given twice)"
printf 'from-file' >"$_SCRATCH/v"
expect_error 2 "--value" "$EVCTL" set vv --value x --value-file "$_SCRATCH/v"
expect_error 2 "--value" "$EVCTL" set vv --value-file "$_SCRATCH/v" --value x
expect_error 2 "--value" "$EVCTL" set vv --value x --value y
expect_error 2 "--value" "$EVCTL" set vv --value-file "$_SCRATCH/v" --value-file "$_SCRATCH/v"
exists vv && fail "a refused set made vv"
expect_exit 0 "$EVCTL" set vv --value-file "$_SCRATCH/v"
expect_exit 0 "$EVCTL" wait vv --timeout 0
expect_stdout from-file

check "--value-file that cannot be read: exit 2 with the cause"
expect_error 2 "cannot read --value-file /: Is a directory" "$EVCTL" set vd --value-file /
rc=0
timeout -k 2 "$T_CALL" "$EVCTL" set vd --value-file - <&- 2>"$LAST_ERR_F" >/dev/null || rc=$?
((rc == 2)) || fail "--value-file - with stdin closed: exit $rc, want 2: $(cat "$LAST_ERR_F")"
expect_one_error_line
expect_stderr_match "cannot read --value-file -: Bad file descriptor"
exists vd && fail "a refused set made vd"

check "durations: no sign, no space, and the message names the option"
for bad in ' 1s' '+1s' '1s ' '+5' $'\t5' '-0' '1m30' '1m 30' 'infinity '; do
        expect_error 2 "--timeout" "$EVCTL" wait dd --timeout "$bad"
done
exists dd && fail "a refused wait made dd"
expect_error 2 "too long \(at most 2555555555h\)" "$EVCTL" wait dd --timeout 9999999999h

check "wait --any/--all with 129 names: refused with the limit, nothing created"
names=()
for i in $(seq 1 129); do
        names+=("many$i")
done
expect_error 2 "at most 128 names" "$EVCTL" wait --any "${names[@]}" --timeout 0
expect_error 2 "at most 128 names" "$EVCTL" wait --all "${names[@]}" --timeout 0
for n in many1 many64 many128 many129; do
        exists "$n" && fail "the refused wait --any created $n"
done
check "wait --any with 128 names works"
expect_exit 1 "$EVCTL" wait --any "${names[@]:0:128}" --timeout 0
expect_exit 0 "$EVCTL" set many100 --value hit
expect_exit 0 "$EVCTL" wait --any "${names[@]:0:128}" --timeout 0
printf 'many100\nhit\n' | cmp -s - "$LAST_OUT_F" || fail "wait --any over 128 names printed the wrong thing
$(_show_last)"

check "wait --any/--all over an object of another type or kind: refused before anything is created"
expect_exit 0 "$EVCTL" sem create sem1 --max 1
expect_exit 0 "$EVCTL" create auto1 --auto
expect_exit 0 "$EVCTL" create once1 --once
expect_error 4 "sem1 is a semaphore, not an event" "$EVCTL" wait --any new1 sem1 --timeout 0
exists new1 && fail "wait --any new1 sem1 created new1"
expect_error 4 "sem1 is a semaphore, not an event" "$EVCTL" wait sem1 --timeout 0
expect_error 4 "auto1.*--auto event.*--any" "$EVCTL" wait --all new2 auto1 --timeout 0
exists new2 && fail "wait --all new2 auto1 created new2"
expect_error 4 "once1 exists with another kind than --manual" "$EVCTL" wait --any new3 once1 --manual --timeout 0
exists new3 && fail "wait --any new3 once1 --manual created new3"
expect_error 2 "--all.*--auto" "$EVCTL" wait --all new4 new5 --auto --timeout 0
exists new4 && fail "wait --all --auto created new4"
expect_exit 1 "$EVCTL" wait --all new6 once1 --timeout 0
exists new6 || fail "a good wait --all did not create its missing event"

check "'evctl sem' (and lock, barrier) without a subcommand: one hint, the subcommands listed"
for w in sem lock barrier; do
        expect_error 2 "needs a subcommand" "$EVCTL" "$w"
        n=$(grep -o "see 'evctl --help'" "$LAST_ERR_F" | wc -l)
        ((n == 1)) || fail "'evctl $w' gives its hint $n times
$(_show_last)"
done
expect_error 2 "create, acquire, release, value or run" "$EVCTL" sem
expect_error 2 "acquire, release or run" "$EVCTL" lock
expect_error 2 "wait, abort or reset" "$EVCTL" barrier

check "limits named: value and message of 4097 bytes, names of 65 bytes"
v4096=$(rand_str 4096)
expect_error 2 "4096" "$EVCTL" set big --value "${v4096}x"
printf '%sx' "$v4096" >"$_SCRATCH/big"
expect_error 2 "4096" "$EVCTL" set big --value-file "$_SCRATCH/big"
expect_error 2 "4096" "$EVCTL" fail big "${v4096}x"
expect_error 2 "at most 64" "$EVCTL" set "$(rand_str 65)"
exists big && fail "a refused set made big"

alive "$EVD_PID" || fail "evd died"
exit 0
