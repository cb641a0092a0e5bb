#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# squat.sh - another user creates the segment's name first: before evd
# starts (under the name an evd before the random names would compute),
# after a RemoveIPC-style removal (under the name just freed), and while no
# daemon runs (under the name evd.segment gives).  Neither evd nor evctl may
# ever serve the squatter's data: evd makes a segment of its own under a new
# random name and publishes it in evd.segment, and evctl, with no daemon to
# ask, exits 6 naming the file and its owner.
#
# Needs root (a second user through setpriv).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

((EUID == 0)) || skip "needs root (setpriv --reuid)"
command -v setpriv >/dev/null || skip "setpriv is not installed"
SYS_PY=/usr/bin/python3
[[ -x $SYS_PY ]] || skip "/usr/bin/python3 is needed"

NOBODY=65534
squatter=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups)

# The segment evd.segment names (or, from an evd that publishes none, the
# one the daemon maps).
segment_name() {
        if [[ -f $EVD_DIR/evd.segment ]]; then
                cat "$EVD_DIR/evd.segment"
        else
                printf '%s' "${EVD_SEGMENT#/dev/shm}"
        fi
}

# The bytes of a real segment whose event "secret" holds "squatted": what a
# squatter would feed root.  Made by a throwaway evd, kept readable for
# the squatter.
evd_setup
expect_exit 0 "$EVCTL" set secret --value squatted
bait=$(mktemp /tmp/evd-it-squat-bait.XXXXXX)
cp "/dev/shm$(segment_name)" "$bait"
chmod 0644 "$bait"
evd_stop

# plant NAME: the squatter creates /dev/shm/NAME (0644, its own) with the bait.
plant() {
        run "${squatter[@]}" "$SYS_PY" -c '
import os, sys
data = open(sys.argv[2], "rb").read()
fd = os.open("/dev/shm" + sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, data)
os.close(fd)' "$1" "$bait"
        ((LAST_RC == 0)) || fail "the squatter could not plant /dev/shm$1: $LAST_ERR"
        _SHM+=("/dev/shm$1")
}

# expect_unsquatted: root's namespace works and shows nothing of the bait.
expect_unsquatted() {
        expect_exit 0 "$EVCTL" set mine --value real
        expect_exit 0 "$EVCTL" wait mine --timeout 0
        expect_stdout real
        expect_exit 1 "$EVCTL" is-set secret
        expect_exit 0 "$EVCTL" list
        grep -q squatted "$LAST_OUT_F" && fail "root was served the squatter's data: $LAST_OUT"
        [[ $(stat -c %U "/dev/shm$(segment_name)") == root ]] ||
                fail "evd.segment names a segment of $(stat -c %U "/dev/shm$(segment_name)")"
        return 0
}

check "the computable name taken before evd starts: evd makes its own segment"
evd_mkdir
legacy=$("$PY" - "$(realpath "$EVD_DIR")" <<'EOF2'
import sys
h = 0xcbf29ce484222325
for c in sys.argv[1].encode():
    h = ((h ^ c) * 0x100000001b3) & 0xffffffffffffffff
print("/evd-0-%016x" % h)
EOF2
)
plant "$legacy"
evd_start
grep -q "segment /dev/shm$legacy belongs to uid $NOBODY (nobody), not to the namespace's owner; not trusting it; making a new segment" \
        "$EVD_DIR/evd.log" || fail "evd did not name the squatter: $(tail -n 3 "$EVD_DIR/evd.log")"
[[ $(segment_name) != "$legacy" ]] || fail "evd.segment names the squatted name"
_SHM+=("/dev/shm$(segment_name)")
expect_unsquatted

check "the name taken right after a RemoveIPC-style removal: evd restores under another name"
bg_start 90 "$EVCTL" wait later --timeout 80s
w=$BG_PID
wait_until "[[ \$(waiters later) == 1 ]]" 30 || fail "the waiter did not block"
seg=$(segment_name)
# Stopped, so that the squatter surely wins the freed name before evd looks.
kill -STOP "$EVD_PID"
rm -f "/dev/shm$seg"
plant "$seg"
kill -CONT "$EVD_PID"
expect_exit 0 "$EVCTL" set later --value after-squat
bg_expect "$w" 0 after-squat
[[ $(segment_name) != "$seg" ]] || fail "evd.segment still names the squatted $seg"
_SHM+=("/dev/shm$(segment_name)")
grep -q "restored with [0-9]* object(s) as $(segment_name)" "$EVD_DIR/evd.log" ||
        fail "evd did not log the restore: $(tail -n 3 "$EVD_DIR/evd.log")"
grep -q "cannot restore" "$EVD_DIR/evd.log" && fail "evd failed to restore: $(grep 'cannot restore' "$EVD_DIR/evd.log")"
expect_unsquatted

check "the published name taken while no daemon runs: evctl exits 6 naming the squatter, evd replaces it"
evd_stop
seg=$(segment_name)
rm -f "/dev/shm$seg"
plant "$seg"
export EVD_NO_AUTOSTART=1
expect_error 6 "segment /dev/shm$seg belongs to uid $NOBODY \\(nobody\\), not to the namespace's owner" \
        "$EVCTL" wait secret --timeout 0
unset EVD_NO_AUTOSTART
evd_start
grep -q "segment /dev/shm$seg belongs to uid $NOBODY (nobody)" "$EVD_DIR/evd.log" ||
        fail "evd did not name the squatter: $(tail -n 3 "$EVD_DIR/evd.log")"
_SHM+=("/dev/shm$(segment_name)")
expect_unsquatted
rm -f "$bait"
say "ok"
