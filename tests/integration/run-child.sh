#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-child.sh - sem run and lock run: options end where COMMAND starts, as
# with flock(1) and timeout(1) (`lock run L ls -d /`); and the child that is
# to run COMMAND, killed before COMMAND starts, gives exit 125 with one line
# saying so, whether it died while waiting for the slot or after the slot
# was taken (then the slot is given back).  Handshakes, not sleeps: the
# waiter count in `show`, the child's process state, and a test-only stop
# (EVCTL_TEST_STOP_HOLDING) at the moment evctl holds the slot.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

state_of() { show_field "$1" state; }

# child_of PID: the one child of PID (within 10 s).
child_of() {
        local c=""
        wait_until "c=\$(pgrep -P $1 | head -n 1); [[ -n \$c ]]" 10 || return 1
        printf '%s' "$c"
}

evd_setup
cd "$_SCRATCH"

# ---- option parsing ------------------------------------------------------------
check "lock run L ls -d /: the command's options are its own"
expect_exit 0 "$EVCTL" lock run L ls -d /
expect_stdout /
expect_exit 0 "$EVCTL" sem run S --max 2 ls -d /
expect_stdout /
check "options before NAME and between NAME and COMMAND are evctl's"
expect_exit 0 "$EVCTL" lock run --timeout 5s L ls -d /
expect_stdout /
expect_exit 0 "$EVCTL" lock run L --timeout 5s -t 5s ls -d /
expect_stdout /
expect_exit 0 "$EVCTL" sem run --timeout 5s S --max 2 ls -d /
expect_stdout /
check "arguments of COMMAND that look like evctl's options go to COMMAND"
expect_exit 0 "$EVCTL" lock run L printf '%s\n' --timeout 1s --max 3 -t -- --help
printf '%s\n' --timeout 1s --max 3 -t -- --help | cmp -s - "$LAST_OUT_F" ||
        fail "COMMAND did not get its arguments
$(_show_last)"
expect_exit 0 "$EVCTL" sem run S --max 2 printf '%s\n' --timeout 1s --max 3
printf '%s\n' --timeout 1s --max 3 | cmp -s - "$LAST_OUT_F" || fail "COMMAND did not get its arguments
$(_show_last)"
check "-- still works, before or after NAME"
expect_exit 0 "$EVCTL" lock run L -- ls -d /
expect_stdout /
expect_exit 0 "$EVCTL" lock run --timeout 5s -- L ls -d /
expect_stdout /
expect_exit 0 "$EVCTL" sem run S --max 2 -- printf '%s\n' --timeout
expect_stdout --timeout
expect_error 127 "cannot run --timeout" "$EVCTL" lock run L -- --timeout 5s true
check "missing COMMAND, bad options before COMMAND: usage errors"
expect_error 2 "missing COMMAND" "$EVCTL" lock run L
expect_error 2 "missing COMMAND" "$EVCTL" lock run L --timeout 5s
expect_error 2 "missing COMMAND" "$EVCTL" lock run L --
expect_error 2 "missing NAME and COMMAND" "$EVCTL" sem run
expect_error 2 "unknown option '-x'" "$EVCTL" lock run L -x true
expect_error 2 "--timeout" "$EVCTL" lock run L --timeout bogus true
check "--timeout between NAME and COMMAND applies: 124 while the lock is held elsewhere"
expect_exit 0 "$EVCTL" lock acquire L --owner $$
expect_error 124 "timed out" "$EVCTL" lock run L --timeout 0 touch ran0
[[ ! -e ran0 ]] || fail "lock run ran its command without the lock"
expect_exit 0 "$EVCTL" lock release L --owner $$

# ---- a child killed before COMMAND starts -----------------------------------------
for kind in lock sem; do
        what=$kind
        [[ $kind == sem ]] && what=semaphore
        if [[ $kind == lock ]]; then
                hold=(lock acquire "${kind}A" --owner $$)
                free=(lock release "${kind}A" --owner $$)
                runner=(lock run "${kind}A")
        else
                expect_exit 0 "$EVCTL" sem create "${kind}A" --max 1
                hold=(sem acquire "${kind}A" --owner $$)
                free=(sem release "${kind}A" --owner $$)
                runner=(sem run "${kind}A")
        fi
        check "$kind run: the child killed while waiting for the slot: exit 125, at once"
        expect_exit 0 "$EVCTL" "${hold[@]}"
        bg_start 60 "$EVCTL" "${runner[@]}" touch "ran-$kind-A"
        t=$BG_PID
        ev=$(child_of "$t") || fail "no evctl under timeout $t"
        wait_until "[[ \$(waiters ${kind}A) == 1 ]]" 20 || fail "$kind run never blocked on ${kind}A"
        c=$(child_of "$ev") || fail "evctl $ev has no child"
        kill -KILL "$c"
        # The slot stays held by this shell: evctl must notice by itself.
        wait_until "! alive $t" 20 || fail "$kind run still waits 20 s after its child was killed"
        bg_expect "$t" 125
        [[ $(nlines "$(bg_err "$t")") == 1 ]] &&
                grep -Eq "^evctl: cannot run touch: .*killed by signal 9.*while waiting for $what ${kind}A" "$(bg_err "$t")" ||
                fail "the message does not say the child was killed while waiting
$(bg_show "$t")"
        [[ ! -e ran-$kind-A ]] || fail "the command ran"
        expect_exit 0 "$EVCTL" "${free[@]}"

        check "$kind run: the child killed after evctl took the slot, before COMMAND: exit 125, slot back"
        [[ $kind == sem ]] && expect_exit 0 "$EVCTL" sem create "${kind}B" --max 1
        bg_start 60 env EVCTL_TEST_STOP_HOLDING=1 "$EVCTL" "${runner[0]}" run "${kind}B" touch "ran-$kind-B"
        t=$BG_PID
        ev=$(child_of "$t") || fail "no evctl under timeout $t"
        # env execs evctl: same pid.  evctl stops itself holding the slot.
        wait_until "[[ \$(_pstate $ev) == T ]]" 20 || fail "evctl did not stop holding the slot (state $(_pstate "$ev"))"
        if [[ $kind == lock ]]; then
                [[ $(state_of "${kind}B") == held ]] || fail "evctl stopped without holding ${kind}B"
        else
                [[ $(state_of "${kind}B") == "0/1 free" ]] || fail "evctl stopped without holding ${kind}B"
        fi
        c=$(child_of "$ev") || fail "evctl $ev has no child"
        kill -KILL "$c"
        wait_until "[[ \$(_pstate $c) == Z ]]" 20 || fail "the killed child $c is not a zombie (state $(_pstate "$c"))"
        kill -CONT "$ev"
        wait_until "! alive $t" 20 || fail "$kind run did not end after SIGCONT"
        bg_expect "$t" 125
        [[ $(nlines "$(bg_err "$t")") == 1 ]] &&
                grep -Eq "^evctl: cannot run touch: .*killed by signal 9.*before it started, after taking $what ${kind}B" "$(bg_err "$t")" ||
                fail "the message does not say the child was killed before COMMAND started
$(bg_show "$t")"
        [[ ! -e ran-$kind-B ]] || fail "the command ran"
        if [[ $kind == lock ]]; then
                [[ $(state_of "${kind}B") == free ]] || fail "${kind}B was not given back: $(state_of "${kind}B")"
        else
                [[ $(state_of "${kind}B") == "1/1 free" ]] || fail "${kind}B was not given back: $(state_of "${kind}B")"
        fi
done

check "the test-only stop changes nothing else: the command runs after SIGCONT"
bg_start 60 env EVCTL_TEST_STOP_HOLDING=1 "$EVCTL" lock run LC touch ran-C
t=$BG_PID
ev=$(child_of "$t") || fail "no evctl under timeout $t"
wait_until "[[ \$(_pstate $ev) == T ]]" 20 || fail "evctl did not stop holding the slot"
kill -CONT "$ev"
bg_expect "$t" 0
[[ -e ran-C ]] || fail "the command did not run"

alive "$EVD_PID" || fail "evd died"
exit 0
