#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# logs.sh - evd's log lines carry sd-daemon priority prefixes ("<6>") only
# when standard error is the journal ($JOURNAL_STREAM names stderr's device
# and inode): plain lines in a file such as evd.log (also when
# $JOURNAL_STREAM was inherited from a service but names another stream),
# on a terminal, and in the evd.log of a daemon evctl started on demand.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# stop_and_check LOG WANT: stop the daemon, then every line of LOG must
# start with WANT ("<N>evd: " or "evd: ").
stop_and_check() {
        local log=$1 want=$2
        evd_stop
        grep -q 'ready, serving' "$log" || fail "no 'ready' line in $log:
$(cat "$log")"
        grep -q 'evd: stopped' "$log" || fail "no 'stopped' line in $log:
$(cat "$log")"
        if [[ $want == journal ]]; then
                grep -Eq '^<6>evd: ready, serving' "$log" || fail "the ready line has no <6>:
$(cat "$log")"
                ! grep -Ev '^<[0-7]>evd: ' "$log" | grep . >/dev/null || fail "a line without a prefix:
$(cat "$log")"
        else
                ! grep -Eq '<[0-7]>' "$log" || fail "a priority prefix outside the journal:
$(cat "$log")"
                ! grep -Ev '^evd: ' "$log" | grep . >/dev/null || fail "a line not starting with 'evd: ':
$(cat "$log")"
        fi
}

check "stderr is the journal (JOURNAL_STREAM is its device:inode): every line has a priority prefix"
evd_mkdir
: >"$EVD_DIR/evd.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$EVD_DIR/evd.log")
export JOURNAL_STREAM
evd_start
expect_exit 0 "$EVCTL" create logged
stop_and_check "$EVD_DIR/evd.log" journal

check "stderr is a file, JOURNAL_STREAM inherited naming another stream: plain lines"
evd_mkdir
: >"$_SCRATCH/other"
JOURNAL_STREAM=$(stat -c '%d:%i' "$_SCRATCH/other")
evd_start
stop_and_check "$EVD_DIR/evd.log" plain

check "no JOURNAL_STREAM, or a malformed one: plain lines"
unset JOURNAL_STREAM
evd_mkdir
evd_start
stop_and_check "$EVD_DIR/evd.log" plain
evd_mkdir
JOURNAL_STREAM=garbage evd_start
stop_and_check "$EVD_DIR/evd.log" plain

check "started on demand by evctl (stderr appended to evd.log), JOURNAL_STREAM inherited: plain"
evd_mkdir
JOURNAL_STREAM=$(stat -c '%d:%i' "$_SCRATCH/other")
export JOURNAL_STREAM
expect_exit 0 "$EVCTL" create ondemand
unset JOURNAL_STREAM
wait_until "[[ -s '$EVD_DIR/evd.pid' ]]" || fail "no evd.pid after autostart"
EVD_PID=$(cat "$EVD_DIR/evd.pid")
_PIDS+=("$EVD_PID")
grep -q 'ready, serving' "$EVD_DIR/evd.log" || fail "evd.log has no ready line: $(cat "$EVD_DIR/evd.log")"
! grep -Eq '<[0-7]>' "$EVD_DIR/evd.log" || fail "a priority prefix in evd.log:
$(cat "$EVD_DIR/evd.log")"
kill -TERM "$EVD_PID"
wait_until "! alive $EVD_PID" || fail "the autostarted evd did not stop"

if command -v script >/dev/null; then
        check "stderr is a terminal (script(1)'s pty): plain lines"
        evd_mkdir
        # The daemon runs on the pty until the runtime directory's stop file
        # appears; script copies what it wrote to the typescript.
        bg_start 120 script -qfec "exec $EVD --runtime-dir $EVD_DIR" "$_SCRATCH/typescript"
        wait_until "[[ -s '$EVD_DIR/evd.pid' ]]" || fail "evd on a terminal did not start"
        EVD_PID=$(cat "$EVD_DIR/evd.pid")
        wait_until "grep -q 'ready, serving' '$_SCRATCH/typescript'" || fail "no ready line on the terminal"
        kill -TERM "$EVD_PID"
        bg_wait "$BG_PID"
        tr -d '\r' <"$_SCRATCH/typescript" | grep 'evd: stopped' >/dev/null || fail "no stopped line on the terminal"
        ! grep -Eq '<[0-7]>' "$_SCRATCH/typescript" || fail "a priority prefix on a terminal:
$(cat "$_SCRATCH/typescript")"
else
        say "note: script(1) not found, the terminal case is not checked"
fi
exit 0
