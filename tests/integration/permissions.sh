#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# permissions.sh - a namespace shared through a group (evd --group G): its
# directory is 0750, its socket and segment 0660, all group G.  A process of
# another uid outside G can neither map the segment nor use the socket, and
# evctl says "permission denied" in one line with exit 6, whether the
# segment or the socket stopped it; even with the files opened up by
# mistake, the daemon refuses it (SO_PEERCRED + SO_PEERGROUPS).  Members of
# G, by supplementary or primary group, use it fully.
#
# Needs root (groupadd, setpriv): a temporary system group is made and
# removed again.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

((EUID == 0)) || skip "needs root (groupadd, setpriv --reuid)"
for t in setpriv groupadd groupdel getent stat; do
        command -v "$t" >/dev/null || skip "$t is not installed"
done
# A python that uid nobody can run (not one under root's home).
SYS_PY=/usr/bin/python3
[[ -x $SYS_PY ]] || skip "/usr/bin/python3 is needed"

group_with_binaries evdt$$

NOBODY=65534
# Command prefixes (arrays, as run/expect_* need real programs).
outsider=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups env LD_LIBRARY_PATH="$PBIN")
member=(setpriv --reuid=$NOBODY --regid=$NOBODY --groups="$GID" env LD_LIBRARY_PATH="$PBIN")
primary=(setpriv --reuid=$NOBODY --regid="$GID" --clear-groups env LD_LIBRARY_PATH="$PBIN")
ev=$PBIN/evctl

# mode_group PATH: "MODE GROUP" of PATH.
mode_group() { stat -c '%a %G' "$1"; }

expect_modes() {
        [[ $(mode_group "$EVD_DIR") == "750 $G" ]] ||
                fail "runtime dir is $(mode_group "$EVD_DIR"), want 750 $G"
        [[ $(mode_group "$EVD_DIR/evd.sock") == "660 $G" ]] ||
                fail "socket is $(mode_group "$EVD_DIR/evd.sock"), want 660 $G"
        [[ -n $EVD_SEGMENT && $(mode_group "$EVD_SEGMENT") == "660 $G" ]] ||
                fail "segment ${EVD_SEGMENT:-?} is $(mode_group "$EVD_SEGMENT" 2>&1), want 660 $G"
}

try_open='
import os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDWR))
    print("opened")
except PermissionError:
    print("EACCES")
'
try_connect='
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect(sys.argv[1])
    print("connected")
except PermissionError:
    print("EACCES")
'

check "evd refuses an unknown group and --group with --user"
evd_mkdir
expect_exit 1 "$EVD" --runtime-dir "$EVD_DIR" --group "no-such-group-$$"
grep -q "no group named 'no-such-group-$$'" "$LAST_ERR_F" || fail "no clear message: $LAST_ERR"
expect_exit 2 "$EVD" --user --group "$G"

check "evd --group $G: directory 0750, socket and segment 0660, all group $G"
evd_start --group "$G"
expect_modes
grep -q "sharing $EVD_DIR with group $G" "$EVD_DIR/evd.log" || fail "evd did not log the sharing"
expect_exit 0 "$EVCTL" set owned --value by-root

check "an outsider (uid $NOBODY, no groups) gets exit 6 and one line, for every command"
for cmd in "set x" "wait owned --timeout 0" "is-set owned" "list" "create y" "show owned"; do
        # shellcheck disable=SC2086 # the commands are meant to split
        expect_error 6 'permission denied' "${outsider[@]}" "$ev" $cmd
done
say "outsider: $LAST_ERR"

check "the outsider can neither map the segment nor reach the socket"
run "${outsider[@]}" "$SYS_PY" -c "$try_open" "$EVD_SEGMENT"
[[ $LAST_OUT == EACCES ]] || fail "outsider opening the segment: $LAST_OUT $LAST_ERR"
run "${outsider[@]}" "$SYS_PY" -c "$try_connect" "$EVD_DIR/evd.sock"
[[ $LAST_OUT == EACCES ]] || fail "outsider connecting: $LAST_OUT $LAST_ERR"

check "a member of $G (supplementary group) uses everything"
expect_exit 0 "${member[@]}" "$ev" wait owned --timeout 0
expect_stdout by-root
expect_exit 0 "${member[@]}" "$ev" set from-member --value hello
expect_exit 0 "${member[@]}" "$ev" create made-by-member --exist-ok
expect_exit 0 "${member[@]}" "$ev" list
expect_stdout_match '^from-member '
expect_exit 0 "${member[@]}" "$ev" delete made-by-member
run "${member[@]}" "$SYS_PY" -c "$try_open" "$EVD_SEGMENT"
[[ $LAST_OUT == opened ]] || fail "member opening the segment: $LAST_OUT $LAST_ERR"

check "a process whose primary group is $G uses it too"
expect_exit 0 "${primary[@]}" "$ev" wait from-member --timeout 0
expect_stdout hello
expect_exit 0 "${primary[@]}" "$ev" create primary-made
expect_exit 0 "$EVCTL" show primary-made

check "a member's waiter is woken by root's set"
bg_start 300 "${member[@]}" "$ev" wait cross-user --timeout 240s
w=$BG_PID
wait_until "[[ \$(waiters cross-user) == 1 ]]" || fail "the member's wait did not start"
expect_exit 0 "$EVCTL" set cross-user --value ok
bg_expect "$w" 0 ok

check "files opened up by mistake: the outsider trusts no segment anyone may write, the daemon refuses it"
chmod 0755 "$EVD_DIR"
chmod 0666 "$EVD_DIR/evd.sock" "$EVD_SEGMENT"
expect_error 6 "segment /dev/shm/evd-.* is writable by everyone \(mode 0666\); not trusting it" \
        "${outsider[@]}" "$ev" create y
expect_error 6 'not trusting it' "${outsider[@]}" "$ev" list
grep -q "refusing pid [0-9]* of uid $NOBODY: it is not in group $G" "$EVD_DIR/evd.log" ||
        fail "the daemon did not log the refusal: $(tail -n 3 "$EVD_DIR/evd.log")"
check "a member meeting that segment has the daemon put its mode back"
expect_exit 0 "${member[@]}" "$ev" create still-fine-for-members
[[ $(mode_group "$EVD_SEGMENT") == "660 $G" ]] ||
        fail "the segment is still $(mode_group "$EVD_SEGMENT") after a member's ping"

check "segment open to all, socket not: the outsider gets exit 6 all the same"
chmod 0666 "$EVD_SEGMENT"
chmod 0660 "$EVD_DIR/evd.sock"
expect_error 6 'not trusting it' "${outsider[@]}" "$ev" create y
chmod 0660 "$EVD_SEGMENT"

check "a restarted evd puts the modes and group back"
chgrp root "$EVD_DIR" "$EVD_SEGMENT"
evd_stop
evd_start --group "$G"
expect_modes
expect_exit 0 "${member[@]}" "$ev" wait owned --timeout 0
expect_error 6 'permission denied' "${outsider[@]}" "$ev" wait owned --timeout 0

check "socket activation: evd gives the inherited socket group $G and mode 0660"
if command -v systemd-socket-activate >/dev/null; then
        evd_stop
        rm -f "$EVD_DIR/evd.sock"
        chmod 0700 "$EVD_DIR"
        systemd-socket-activate --seqpacket -l "$EVD_DIR/evd.sock" -- "$EVD" --runtime-dir "$EVD_DIR" \
                --group "$G" 2>>"$EVD_DIR/evd.log" &
        _PIDS+=("$!")
        wait_until "[[ -S '$EVD_DIR/evd.sock' ]]" || fail "systemd-socket-activate did not listen"
        expect_exit 0 "$EVCTL" create activated # starts evd on the inherited socket
        wait_until "[[ \$(mode_group '$EVD_DIR/evd.sock') == '660 $G' ]]" ||
                fail "the inherited socket is $(mode_group "$EVD_DIR/evd.sock"), want 660 $G"
        expect_modes
        expect_exit 0 "${member[@]}" "$ev" set activated
        expect_error 6 'permission denied' "${outsider[@]}" "$ev" set activated
        EVD_PID=$(first_daemon_pid "$EVD_DIR")
        [[ -n $EVD_PID ]] || fail "no socket-activated evd found"
else
        say "note: no systemd-socket-activate; skipped"
fi

check "without --group only root and evd's own uid get in, even for members"
evd_stop
evd_mkdir
evd_start
[[ $(stat -c %a "$EVD_DIR") == 700 ]] || fail "private runtime dir is $(stat -c %a "$EVD_DIR")"
expect_exit 0 "$EVCTL" set private
expect_error 6 'permission denied' "${member[@]}" "$ev" wait private --timeout 0
exit 0
