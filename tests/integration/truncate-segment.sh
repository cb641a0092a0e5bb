#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# truncate-segment.sh - anyone who may write the segment can cut its file
# short (truncate -s 4096) under the daemon and its clients.  Touching the
# part cut off raises SIGBUS; neither evd nor evctl may die of it.  evd logs
# an error naming the file, replaces it with a new segment holding what is
# left (objects in the part cut off are lost, and it says how many), and the
# namespace works on; a waiter whose object was lost exits 5 naming the
# segment, one whose object survived is moved over and keeps waiting.
# Without a daemon, evctl exits 5 naming the file, and the next evd restores
# what is left.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python

# The segment evd.segment names (or, from an evd that publishes none, the
# one the daemon maps).
segment_path() {
        if [[ -f $EVD_DIR/evd.segment ]]; then
                printf '/dev/shm%s' "$(cat "$EVD_DIR/evd.segment")"
        else
                printf '%s' "$EVD_SEGMENT"
        fi
}

# offsets NAME...: "OFFSET NAME" for each NAME, where its slot sits in the
# segment file (found by its name), nearest to the start first.
offsets() {
        "$PY" - "$(segment_path)" "$@" <<'EOF2'
import re, sys
data = open(sys.argv[1], "rb").read()
found = []
for name in sys.argv[2:]:
    m = re.search(rb"(?<![0-9A-Za-z._:@-])" + re.escape(name.encode()) + rb"\x00", data)
    found.append((m.start() if m else -1, name))
for off, name in sorted(found):
    print(off, name)
EOF2
}

check "truncate -s 4096 while a waiter blocks: evd survives, the waiter exits 5 naming the segment"
evd_setup --capacity 256
expect_exit 0 "$EVCTL" set before --value 1
expect_exit 0 "$EVCTL" sem create slots --max 2
expect_exit 0 "$EVCTL" sem acquire slots --owner $$
bg_start 90 "$EVCTL" wait doomed --timeout 80s
w=$BG_PID
wait_until "[[ \$(waiters doomed) == 1 ]]" 30 || fail "the waiter did not block"
seg=$(segment_path)
truncate -s 4096 "$seg"
bg_expect "$w" 5
grep -qE "^evctl: cannot wait for doomed: segment $seg was truncated" "$(bg_err "$w")" ||
        fail "the waiter's message does not name the segment: $(cat "$(bg_err "$w")")"
[[ $(nlines "$(bg_err "$w")") == 1 ]] || fail "more than one line: $(cat "$(bg_err "$w")")"
alive "$EVD_PID" || fail "evd died"
grep -qE "segment $seg was truncated to 4096 bytes .*; replacing it" "$EVD_DIR/evd.log" ||
        fail "evd did not log the truncation: $(tail -n 3 "$EVD_DIR/evd.log")"
grep -qE "restored with 0 object\(s\) as /evd-[0-9]+-[0-9a-f]{16}; 3 object\(s\) were lost" \
        "$EVD_DIR/evd.log" || fail "evd did not say what was lost: $(tail -n 3 "$EVD_DIR/evd.log")"
new=$(segment_path)
_SHM+=("$new")
[[ $new != "$seg" && -f $new && ! -e $seg ]] || fail "no new segment in place of $seg"

check "the namespace works afterwards"
expect_exit 0 "$EVCTL" set after --value 2
expect_exit 0 "$EVCTL" wait after --timeout 0
expect_stdout 2
expect_exit 0 "$EVCTL" list
expect_stdout_match '^after '
expect_exit 0 "$EVCTL" sem create slots --max 2
expect_exit 0 "$EVCTL" sem acquire slots --owner $$ --timeout 0
expect_exit 0 "$EVCTL" sem release slots --owner $$
alive "$EVD_PID" || fail "evd died"

check "cut inside the objects: a waiter on a surviving object is moved over, one on a lost object exits 5"
for i in $(seq 1 24); do
        expect_exit 0 "$EVCTL" create "obj$i"
done
# The objects nearest to the start and to the end of the file.
mapfile -t offs < <(offsets $(printf 'obj%d ' $(seq 1 24)))
read -r lo_off lo <<<"${offs[0]}"
read -r hi_off hi <<<"${offs[-1]}"
((lo_off >= 0)) || fail "cannot find the objects in the segment: ${offs[*]}"
((hi_off - lo_off > 16384)) || fail "obj1..24 are too close together ($lo_off $lo, $hi_off $hi)"
bg_start 90 "$EVCTL" wait "$lo" --timeout 80s
wl=$BG_PID
bg_start 90 "$EVCTL" wait "$hi" --timeout 80s
wh=$BG_PID
wait_until "[[ \$(waiters $lo) == 1 && \$(waiters $hi) == 1 ]]" 30 || fail "the waiters did not block"
seg=$(segment_path)
# Past the survivor's slot (each is a few KiB), well before the other's.
cut=$(((lo_off + 8192) / 4096 * 4096))
truncate -s "$cut" "$seg"
bg_expect "$wh" 5
grep -q "segment $seg was truncated" "$(bg_err "$wh")" ||
        fail "the lost object's waiter does not name the segment: $(cat "$(bg_err "$wh")")"
wait_until "grep -q 'restored with' '$EVD_DIR/evd.log' && [[ \$(segment_path) != '$seg' ]]" 30 ||
        fail "evd did not replace the segment"
_SHM+=("$(segment_path)")
expect_exit 0 "$EVCTL" set "$lo" --value survived
bg_expect "$wl" 0 survived
alive "$EVD_PID" || fail "evd died"

check "no daemon: evctl exits 5 naming the cut segment; the next evd restores what is left"
expect_exit 0 "$EVCTL" set kept --value k
evd_stop
seg=$(segment_path)
size=$(stat -c %s "$seg")
truncate -s $((size - 4096)) "$seg"
export EVD_NO_AUTOSTART=1
expect_error 5 "segment $seg header is inconsistent|segment $seg is truncated" \
        "$EVCTL" wait kept --timeout 0
unset EVD_NO_AUTOSTART
evd_start
grep -qE "segment $seg was truncated to $((size - 4096)) bytes .*; restoring it" "$EVD_DIR/evd.log" ||
        fail "evd did not log the truncation at start: $(tail -n 3 "$EVD_DIR/evd.log")"
_SHM+=("$(segment_path)")
[[ ! -e $seg ]] || fail "the cut segment $seg was left behind"
expect_exit 0 "$EVCTL" wait kept --timeout 0
expect_stdout k
say "ok"
