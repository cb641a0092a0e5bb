#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# removeipc.sh - logind's RemoveIPC=yes deletes a user's POSIX shared memory
# when their last session ends.  The user instance must survive that: the
# daemon puts every object back under the segment's name and says so in its
# log, a waiter that was blocked across the removal still gets the value, and
# new evctl calls see the old state.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evd_setup
expect_exit 0 "$EVCTL" set kept --value "before removal"
bg_start 20 "$EVCTL" wait later --timeout 15s
waiter=$BG_PID
wait_until "[[ \$(waiters later) == 1 ]]" 5 || fail "the waiter did not block"

seg=$(grep -oE '/evd-[0-9]+-[0-9a-f]{16}' "$EVD_DIR/evd.log" | head -n 1)
[[ -n $seg && -e /dev/shm$seg ]] || fail "cannot find the segment in the log"
check "removing /dev/shm$seg as logind would"
rm -f "/dev/shm$seg"

check "a set after the removal reaches the blocked waiter"
expect_exit 0 "$EVCTL" set later --value "after removal"
bg_expect "$waiter" 0 "after removal"

check "state from before the removal is intact"
expect_exit 0 "$EVCTL" wait kept --timeout 0
expect_stdout "before removal"
[[ -e /dev/shm$seg ]] || fail "the segment was not restored under its name"
grep -q 'was removed' "$EVD_DIR/evd.log" || fail "the daemon did not log the removal"
grep -q 'restored with 2 object' "$EVD_DIR/evd.log" || fail "the daemon did not log the restore"

check "the restored segment keeps working for new waiters"
bg_start 20 "$EVCTL" wait again --timeout 15s
w2=$BG_PID
wait_until "[[ \$(waiters again) == 1 ]]" 5 || fail "the second waiter did not block"
expect_exit 0 "$EVCTL" set again --value yes
bg_expect "$w2" 0 "yes"
say "ok"
