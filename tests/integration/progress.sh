#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# progress.sh - --progress on every blocking command (sem acquire, sem run,
# lock acquire, lock run, barrier wait): while blocked, each prints "evctl:
# still waiting for TYPE NAME (D): held by pid P" (at a barrier, the parties
# waiting), in the shape of wait --progress, naming the holder; once the
# holder lets go it goes on.  Durations in messages read back as written.
# Handshakes only: a holder holds until told, the progress line is awaited.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evd_setup

# A process that holds until it is killed.
bg_start 300 sleep 1000
holder=$(bg_child "$BG_PID") || fail "no holder process"

# await_line PID REGEX: the background command PID prints a stderr line
# matching REGEX (ERE) while it is still blocked.
await_line() {
        wait_until "grep -Eq -- '$2' '$(bg_err "$1")'" ||
                fail "no line /$2/ on stderr
$(bg_show "$1")"
        alive "$1" || fail "the command ended instead of waiting
$(bg_show "$1")"
}

# only_progress PID WHAT: every stderr line is a progress line for WHAT.
only_progress() {
        ! grep -Ev "^evctl: still waiting for $2 \([0-9][0-9a-z.]*\)" "$(bg_err "$1")" | grep . >/dev/null ||
                fail "a stderr line that is not a progress line
$(bg_show "$1")"
}

check "sem acquire --progress names the holder, and goes on once the slot is released"
expect_exit 0 "$EVCTL" sem create s --max 1
expect_exit 0 "$EVCTL" sem acquire s --owner "$holder"
bg_start 120 "$EVCTL" sem acquire s --owner $$ --progress 200ms
acq=$BG_PID
await_line "$acq" "^evctl: still waiting for semaphore s \\([0-9.]+m?s\\): held by pid $holder\$"
expect_exit 0 "$EVCTL" sem release s --owner "$holder"
bg_expect "$acq" 0
only_progress "$acq" "semaphore s"
expect_exit 0 "$EVCTL" sem release s --owner $$

check "sem run --progress: a holder with two slots is shown with its count"
expect_exit 0 "$EVCTL" sem create s2 --max 2
expect_exit 0 "$EVCTL" sem acquire s2 --owner "$holder"
expect_exit 0 "$EVCTL" sem acquire s2 --owner "$holder"
bg_start 120 "$EVCTL" sem run s2 --progress 0.25s -- touch "$_SCRATCH/sem-ran"
run_=$BG_PID
await_line "$run_" "^evctl: still waiting for semaphore s2 \\([0-9.]+m?s\\): held by pid $holder \\(2\\)\$"
[[ ! -e $_SCRATCH/sem-ran ]] || fail "sem run ran its command without a slot"
expect_exit 0 "$EVCTL" sem release s2 --owner "$holder"
bg_expect "$run_" 0
[[ -e $_SCRATCH/sem-ran ]] || fail "sem run did not run its command"
only_progress "$run_" "semaphore s2"

check "lock acquire --progress names the owner"
expect_exit 0 "$EVCTL" lock acquire l --owner "$holder"
bg_start 120 "$EVCTL" lock acquire l --owner $$ --progress 200ms
acq=$BG_PID
await_line "$acq" "^evctl: still waiting for lock l \\([0-9.]+m?s\\): held by pid $holder\$"
expect_exit 0 "$EVCTL" lock release l --owner "$holder"
bg_expect "$acq" 0
only_progress "$acq" "lock l"
expect_exit 0 "$EVCTL" lock release l --owner $$

check "lock run --progress names the owner, and runs the command once it has the lock"
expect_exit 0 "$EVCTL" lock acquire l --owner "$holder"
bg_start 120 "$EVCTL" lock run l --progress 300ms touch "$_SCRATCH/lock-ran"
run_=$BG_PID
await_line "$run_" "^evctl: still waiting for lock l \\([0-9.]+m?s\\): held by pid $holder\$"
expect_exit 0 "$EVCTL" lock release l --owner "$holder"
bg_expect "$run_" 0
[[ -e $_SCRATCH/lock-ran ]] || fail "lock run did not run its command"
only_progress "$run_" "lock l"

check "barrier wait --progress names the parties waiting"
bg_start 120 "$EVCTL" barrier wait b --parties 2 --progress 200ms
first=$BG_PID
party=$(bg_child "$first") || fail "no first party"
await_line "$first" "^evctl: still waiting for barrier b \\([0-9.]+m?s\\): 1/2 waiting: pid $party\$"
expect_exit 0 "$EVCTL" barrier wait b --parties 2
expect_stdout 1
bg_expect "$first" 0 0
only_progress "$first" "barrier b"

check "without --progress, a blocked command prints nothing while it waits"
expect_exit 0 "$EVCTL" lock acquire l --owner "$holder"
bg_start 120 "$EVCTL" lock acquire l --owner $$
acq=$BG_PID
wait_until "[[ \$(waiters l) == 1 ]]" || fail "the acquirer did not block"
expect_exit 0 "$EVCTL" lock release l --owner "$holder"
bg_expect "$acq" 0
[[ ! -s $(bg_err "$acq") ]] || fail "output without --progress
$(bg_show "$acq")"
expect_exit 0 "$EVCTL" lock release l --owner $$

check "progress lines count whole intervals, written back as durations are written"
# A line a whole number of intervals after the start, with a fraction (a
# late call on a busy machine may skip a tick, never misstate it).
bg_start 120 "$EVCTL" wait never --progress 1.5s
w=$BG_PID
await_line "$w" '^evctl: still waiting for never \((1|4|7|10|13)\.5s\)$'
kill -TERM "$w"
bg_wait "$w"
! grep -Ev '^evctl: still waiting for never \((1.5s|3s|4.5s|6s|7.5s|9s|10.5s|12s|13.5s|15s)\)$' "$(bg_err "$w")" | grep . >/dev/null ||
        fail "a progress line that is not a whole number of 1.5s intervals
$(bg_show "$w")"

check "timeouts are given back as written"
# s2 has two slots, and the holder still holds one since sem run above.
expect_exit 0 "$EVCTL" sem acquire s2 --owner "$holder"
expect_error 1 '^evctl: timed out waiting for semaphore s2 \(0\.3s\)$' "$EVCTL" sem acquire s2 --owner $$ --timeout 0.3s
expect_error 1 '^evctl: timed out waiting for semaphore s2 \(250ms\)$' "$EVCTL" sem acquire s2 --owner $$ --timeout 250ms
expect_error 1 '^evctl: timed out waiting for semaphore s2 \(0s 200ms\)$' "$EVCTL" sem acquire s2 --owner $$ --timeout '0s 200ms'
expect_error 124 '^evctl: timed out waiting for semaphore s2 \(0\.2s\); true not run$' "$EVCTL" sem run s2 --timeout 0.2s true
expect_error 1 '^evctl: timed out waiting for never \(500ms\)$' "$EVCTL" wait never --timeout 0.5
expect_error 1 '^evctl: timed out waiting for never \(0\.25s\)$' "$EVCTL" wait never --timeout 0.25s
expect_error 1 '^evctl: timed out at barrier b2 \(0\.2s\); it is broken now$' "$EVCTL" barrier wait b2 --parties 2 --timeout 0.2s

check "days, compound spans and infinity are accepted"
expect_exit 0 "$EVCTL" set ready --value up
for d in 1d 2days 1m30s '1h 2m' 1w infinity 1.5d; do
        expect_exit 0 "$EVCTL" wait ready --timeout "$d"
        expect_stdout up
done
expect_exit 0 "$EVCTL" lock acquire l2 --owner $$ --timeout infinity --progress 1d
expect_error 2 "'1m30': each part of a duration needs a unit" "$EVCTL" wait ready --timeout 1m30
expect_error 2 'finite duration above 0' "$EVCTL" wait ready --progress infinity
expect_error 2 "unknown unit 'y'" "$EVCTL" lock acquire l2 --timeout 1y
exit 0
