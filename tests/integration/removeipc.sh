#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# removeipc.sh - logind's RemoveIPC=yes deletes a user's POSIX shared memory
# when their last session ends.  The user instance must survive that: the
# daemon puts every object into a new segment (under a new random name that
# it publishes in the runtime directory's evd.segment), says so in its log,
# a waiter that was blocked across the removal still gets the value, and
# new evctl calls see the old state.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The segment the namespace's name file names ("" if none).
segment_name() { cat "$EVD_DIR/evd.segment" 2>/dev/null || true; }

evd_setup
expect_exit 0 "$EVCTL" set kept --value "before removal"
bg_start 90 "$EVCTL" wait later --timeout 80s
waiter=$BG_PID
wait_until "[[ \$(waiters later) == 1 ]]" 30 || fail "the waiter did not block"

seg=$(segment_name)
[[ $seg =~ ^/evd-[0-9]+-[0-9a-f]{16}$ && -e /dev/shm$seg ]] ||
        fail "evd.segment does not name an existing segment: '$seg'"
grep -qF "$seg" "$EVD_DIR/evd.log" || fail "the log does not name the segment $seg"
check "removing /dev/shm$seg as logind would"
rm -f "/dev/shm$seg"

check "a set after the removal reaches the blocked waiter"
expect_exit 0 "$EVCTL" set later --value "after removal"
bg_expect "$waiter" 0 "after removal"

check "state from before the removal is intact"
expect_exit 0 "$EVCTL" wait kept --timeout 0
expect_stdout "before removal"
new=$(segment_name)
[[ -n $new && $new != "$seg" && -e /dev/shm$new ]] ||
        fail "the segment was not restored under a new name (evd.segment: '$new')"
_SHM+=("/dev/shm$new")
[[ ! -e /dev/shm$seg ]] || fail "the removed name $seg came back"
grep -q 'was removed' "$EVD_DIR/evd.log" || fail "the daemon did not log the removal"
grep -q "restored with 2 object(s) as $new" "$EVD_DIR/evd.log" ||
        fail "the daemon did not log the restore"

check "the restored segment keeps working for new waiters"
bg_start 90 "$EVCTL" wait again --timeout 80s
w2=$BG_PID
wait_until "[[ \$(waiters again) == 1 ]]" 30 || fail "the second waiter did not block"
expect_exit 0 "$EVCTL" set again --value yes
bg_expect "$w2" 0 "yes"

check "removed while the daemon is stopped: the next evctl has it replaced, nothing half-made is seen"
expect_exit 0 "$EVCTL" set kept --value "third"
kill -STOP "$EVD_PID"
seg=$(segment_name)
rm -f "/dev/shm$seg"
# A client that starts now finds no segment and asks the stopped daemon;
# it must wait for the answer, not fail on its own.
bg_start 90 "$EVCTL" wait kept --timeout 80s
w3=$BG_PID
wait_until "[[ -n \$(pgrep -P $w3) ]]" 30 || fail "the client did not start"
kill -CONT "$EVD_PID"
bg_expect "$w3" 0 "third"
new=$(segment_name)
[[ $new != "$seg" && -e /dev/shm$new ]] || fail "no new segment after the second removal"
_SHM+=("/dev/shm$new")
say "ok"
