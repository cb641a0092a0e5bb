#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# hidepid.sh - a group-shared namespace (evd --group G) on a machine whose
# /proc is mounted hidepid=2: a member cannot read the /proc entries of
# another member's processes, and must not take that for their death.  A
# member blocked on a lock another member's live process holds keeps
# waiting (it gives nothing back by itself, even though it cannot see the
# daemon either), and --owner naming a process it cannot see is refused with
# "permission denied" (exit 6), not "does not run".  Death is still noticed.
#
# Runs in a private mount namespace (unshare -m) with a /proc of its own, so
# the machine's /proc is left alone.  Needs root; skipped where the sandbox
# forbids unshare or mounting proc.
set -euo pipefail

if [[ -z ${EVD_HIDEPID_INNER:-} ]]; then
        if ((EUID != 0)); then
                echo "hidepid: SKIP: needs root (unshare, mount, setpriv --reuid)"
                exit 77
        fi
        for t in unshare mount setpriv groupadd groupdel getent; do
                if ! command -v "$t" >/dev/null; then
                        echo "hidepid: SKIP: $t is not installed"
                        exit 77
                fi
        done
        if ! unshare --mount --propagation private \
                sh -c 'mount -t proc -o hidepid=2 proc /proc' 2>/dev/null; then
                echo "hidepid: SKIP: cannot mount a hidepid=2 /proc in a private mount namespace here"
                exit 77
        fi
        export EVD_HIDEPID_INNER=1
        exec unshare --mount --propagation private bash "${BASH_SOURCE[0]}" "$@"
fi
mount -t proc -o hidepid=2 proc /proc

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

group_with_binaries evdh$$

# Two members of G with uids of their own.
alice=(setpriv --reuid=65533 --regid=65533 --groups="$GID" env LD_LIBRARY_PATH="$PBIN")
bob=(setpriv --reuid=65534 --regid=65534 --groups="$GID" env LD_LIBRARY_PATH="$PBIN")
ev=$PBIN/evctl

lock_state() { show_field "$1" state; }

evd_setup --group "$G"

check "alice holds a lock; bob cannot see her processes in /proc"
bg_start 120 "${alice[@]}" "$ev" lock run L -- sleep 100
run_group=$BG_PID
wait_until "[[ \$(lock_state L) == held ]]" 10 || fail "alice's lock run did not take the lock
$(bg_show "$run_group")"
holder=$(timeout 5 "$EVCTL" show L | awk '/^holder: pid/ { sub(",", "", $3); print $3 }')
[[ -n $holder ]] || fail "show L names no holder"
[[ -e /proc/$holder ]] || fail "root cannot see alice's process $holder"
if "${bob[@]}" test -e "/proc/$holder"; then
        skip "hidepid=2 does not hide alice's processes from bob here"
fi

check "bob blocks on it (not given away), although /proc hides alice and the daemon"
expect_error 124 "L" "${bob[@]}" "$ev" lock run L --timeout 2500ms -- true
[[ $(lock_state L) == held ]] || fail "lock L is $(lock_state L) while alice's processes live"
expect_exit 0 "$EVCTL" show L
expect_stdout_match "^holder: pid $holder, "
grep -Eq 'gave back|abandon' "$EVD_DIR/evd.log" && fail "a live holder was taken for dead:
$(grep -E 'gave back|abandon' "$EVD_DIR/evd.log")"

check "--owner naming a process bob cannot see: permission denied, not 'does not run'"
expect_error 6 "" "${bob[@]}" "$ev" lock acquire L2 --owner "$holder" --timeout 0
expect_error 2 "" "${bob[@]}" "$ev" lock acquire L2 --owner "$(sh -c 'echo $$')" --timeout 0

check "alice's processes killed: bob gets the lock, reported abandoned"
# evctl first: killed after its command, it could see the command die and
# release the lock itself, which is not what this checks.
kill -KILL "$(pgrep -P "$run_group" | head -n 1)" 2>/dev/null || true
wait "$run_group" 2>/dev/null || true
kill -KILL "$holder" 2>/dev/null || true
expect_exit 0 "${bob[@]}" "$ev" lock run L --timeout 5s -- true
expect_stderr_match 'abandoned'
[[ $(lock_state L) == free ]] || fail "lock L is $(lock_state L) after bob's run"
