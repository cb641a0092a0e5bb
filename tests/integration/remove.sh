#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# remove.sh - evd --remove: refused (exit 4, one line naming a user) while
# a live process holds or waits on an object, leaving the daemon and the
# segment alone; otherwise the daemon is stopped and the segment, its name
# file, socket, lock, pid file and log are removed, so nothing stays in
# /dev/shm.  --force removes a namespace in use, and a process still
# waiting is told its object was deleted (exit 4).  With no daemon running,
# the files go all the same; the user instance's own directory goes too.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# expect_evd_error CODE REGEX ARGS...: evd ARGS exits CODE with one line
# "evd: ..." on stderr matching REGEX.
expect_evd_error() {
        local code=$1 re=$2
        shift 2
        expect_exit "$code" "$EVD" "$@"
        [[ $(nlines "$LAST_ERR_F") == 1 ]] || fail "expected one line on stderr
$(_show_last)"
        expect_stderr_match "^evd: "
        expect_stderr_match "$re"
}

# nothing_left DIR SEGMENT: the segment file is gone and DIR holds nothing
# of evd's.
nothing_left() {
        [[ ! -e $2 ]] || fail "segment $2 is still in /dev/shm"
        local f
        for f in evd.segment evd.sock evd.lock evd.pid evd.log; do
                [[ ! -e $1/$f ]] || fail "$1/$f was not removed"
        done
}

evd_setup
seg=$EVD_SEGMENT
[[ -n $seg && -e $seg ]] || fail "no segment found for the daemon"
bg_start 300 sleep 1000
holder=$(bg_child "$BG_PID") || fail "no holder process"
expect_exit 0 "$EVCTL" sem create builds --max 2
expect_exit 0 "$EVCTL" sem acquire builds --owner "$holder"
expect_exit 0 "$EVCTL" set ready --value v

check "refused while a process holds a slot: exit 4, naming it; nothing changed"
expect_evd_error 4 "not removing the namespace in $EVD_DIR: it is in use, 1 hold\(s\) and 0 waiter\(s\) \(pid $holder holds builds\); stop them first, or pass --force" \
        --remove --runtime-dir "$EVD_DIR"
alive "$EVD_PID" || fail "the refused removal stopped the daemon"
[[ -e $seg ]] || fail "the refused removal removed the segment"
expect_exit 0 "$EVCTL" wait ready --timeout 0
expect_stdout v
expect_exit 0 "$EVCTL" create after-refusal

check "refused while a process waits: exit 4, naming the waiter"
expect_exit 0 "$EVCTL" sem release builds --owner "$holder"
bg_start 120 "$EVCTL" wait never
w=$BG_PID
wpid=$(bg_child "$w") || fail "no waiter"
wait_until "[[ \$(waiters never) == 1 ]]" || fail "the waiter did not block"
expect_evd_error 4 "0 hold\(s\) and 1 waiter\(s\) \(pid $wpid waits on never\)" --remove --runtime-dir "$EVD_DIR"
alive "$EVD_PID" || fail "the refused removal stopped the daemon"

check "a party waiting at a barrier is named as such"
bg_start 120 "$EVCTL" barrier wait bb --parties 2
bw=$BG_PID
bpid=$(bg_child "$bw") || fail "no barrier party"
wait_until "[[ \$(waiters bb) == 1 ]]" || fail "the party did not arrive"
expect_evd_error 4 "1 hold\(s\) and [0-9]+ waiter\(s\) \(pid $bpid waits at bb\)" --remove --runtime-dir "$EVD_DIR"

check "--force: removed all the same; the waiter is told its event was deleted"
expect_exit 0 "$EVCTL" sem acquire builds --owner "$holder"
expect_exit 0 "$EVD" --remove --force --runtime-dir "$EVD_DIR"
expect_stderr_match "^evd: removed the namespace in $EVD_DIR \(daemon stopped, segment $seg, [0-9]+ object\(s\), forced\)$"
bg_expect "$w" 4
grep -q 'evctl: never was deleted while waiting' "$(bg_err "$w")" || fail "the waiter was not told
$(bg_show "$w")"
bg_wait "$bw"
((BG_RC != 0 && BG_RC != 124)) || fail "the barrier party did not learn of the removal
$(bg_show "$bw")"
_reap "$EVD_PID" "$T_WAIT"
((REAP_RC != 124)) || fail "the daemon did not stop"
nothing_left "$EVD_DIR" "$seg"
[[ -d $EVD_DIR ]] || fail "a named runtime directory was removed"

check "a namespace nobody uses: the daemon is stopped, segment and files are removed"
expect_exit 0 "$EVCTL" create fresh
pid=$(first_daemon_pid "$EVD_DIR")
[[ -n $pid ]] || fail "no daemon was started on demand"
_PIDS+=("$pid")
seg2=$(note_segment_of "$pid" | head -n 1)
[[ -n $seg2 && $seg2 != "$seg" ]] || fail "the new namespace did not get a new segment ($seg2)"
expect_exit 0 "$EVCTL" list
expect_stdout_match '^fresh '
! grep -q '^builds ' "$LAST_OUT_F" || fail "an object of the removed namespace came back"
expect_exit 0 "$EVD" --remove --runtime-dir "$EVD_DIR"
expect_stderr_match "daemon stopped, segment $seg2, 1 object\(s\)\)$"
wait_until "! alive $pid" || fail "the daemon did not stop"
nothing_left "$EVD_DIR" "$seg2"

check "no daemon running: the segment and files are removed all the same"
evd_start
seg3=$EVD_SEGMENT
expect_exit 0 "$EVCTL" create left-behind
evd_stop
[[ -e $seg3 ]] || fail "the stopped daemon removed its segment"
expect_exit 0 "$EVD" --remove --runtime-dir "$EVD_DIR"
expect_stderr_match "no daemon ran, segment $seg3, 1 object\(s\)\)$"
nothing_left "$EVD_DIR" "$seg3"

check "usage: a missing directory is exit 5, --force alone and --remove with serving options exit 2"
expect_evd_error 5 "no namespace in $EVD_DIR/none: the directory does not exist" --remove --runtime-dir "$EVD_DIR/none"
expect_evd_error 2 "--force goes with --remove" --force --runtime-dir "$EVD_DIR"
expect_evd_error 2 "--remove takes only" --remove --capacity 10 --runtime-dir "$EVD_DIR"

check "the user instance: its directory goes too"
xdg=$(mktemp -d "/tmp/evd-it-remove-xdg.XXXXXX")
_DIRS+=("$xdg/evd" "$xdg")
chmod 0700 "$xdg"
(
        unset EVD_RUNTIME_DIR
        export XDG_RUNTIME_DIR=$xdg
        expect_exit 0 "$EVCTL" --user create mine
        [[ -d $xdg/evd ]] || fail "no user instance directory"
        upid=$(first_daemon_pid "$xdg/evd")
        [[ -n $upid ]] || fail "no user daemon"
        useg=$(note_segment_of "$upid" | head -n 1)
        expect_exit 0 "$EVD" --remove --user
        wait_until "! alive $upid" || fail "the user daemon did not stop"
        [[ ! -e $useg ]] || fail "the user segment is still there"
        [[ ! -e $xdg/evd ]] || fail "the user instance's directory is still there"
)
exit 0
