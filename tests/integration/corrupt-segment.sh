#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# corrupt-segment.sh - the shared segment is untrusted input: scribble random
# bytes over the objects area and over the header; evctl must exit with a
# code (no signal death, no hang) and at most one error line, evd must stay
# alive.  A scribbled header makes evd (running, or starting) replace the
# segment with a new one, logging the file's name; without a daemon, evctl
# exits 5 naming the file.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python

PROBLEMS=()
HANGS=0
FAILED_RUNS=()

# probe CMD...: run CMD (3 s bound); it must exit normally (< 124, so no
# signal death and no hang) with at most one stderr line, "evctl: ..." when
# it fails.  Problems are collected in PROBLEMS; after 2 hangs in one run the
# rest of the run's probes are skipped (to bound the test's time).
probe() {
        if ((HANGS >= 2)); then
                return 0
        fi
        T_CALL=3 run "$@"
        say "  $LAST_CMD -> exit $LAST_RC"
        local n
        n=$(nlines "$LAST_ERR_F")
        if ((LAST_RC == 124)); then
                HANGS=$((HANGS + 1))
                PROBLEMS+=("hang (killed after 3 s): $(_show_last)")
        elif ((LAST_RC >= 124)); then
                PROBLEMS+=("died (exit $LAST_RC, signal $((LAST_RC - 128))?): $(_show_last)")
        elif ((n > 1)); then
                PROBLEMS+=("more than one stderr line: $(_show_last)")
        elif ((LAST_RC != 0 && n == 1)) && ! grep -q '^evctl: ' "$LAST_ERR_F"; then
                PROBLEMS+=("error line does not start with 'evctl: ': $(_show_last)")
        fi
        return 0
}

# probe_json CMD...: probe, and when it succeeds its stdout must be JSON.
probe_json() {
        probe "$@"
        if ((LAST_RC == 0)) && ! "$PY" -m json.tool "$LAST_OUT_F" >/dev/null 2>&1; then
                PROBLEMS+=("exit 0 but stdout is not valid JSON: $(_show_last)")
        fi
}

probe_daemon_alive() {
        if ! alive "$EVD_PID"; then
                local rc=0
                wait "$EVD_PID" 2>/dev/null || rc=$?
                PROBLEMS+=("evd died (exit $rc) after: $1")
                return 1
        fi
}

# probe_all: every client command against the (scribbled) namespace.
probe_all() {
        probe "$EVCTL" list
        probe_daemon_alive "evctl list" || return 0
        probe_json "$EVCTL" list --json
        probe_daemon_alive "evctl list --json" || return 0
        local i
        for i in 1 7 13 20; do
                probe "$EVCTL" show "e$i"
                probe_json "$EVCTL" show "e$i" --json
        done
        for i in 1 5 9 14 19; do
                probe "$EVCTL" set "e$i" --value new
                probe "$EVCTL" wait "e$i" --timeout 0
                probe "$EVCTL" is-set "e$i"
                probe "$EVCTL" clear "e$i"
        done
        probe "$EVCTL" wait --any e2 e3 e4 --timeout 0
        probe "$EVCTL" wait e6 --timeout 200ms
        probe "$EVCTL" create fresh-one
        probe_daemon_alive "evctl create" || return 0
        probe "$EVCTL" delete e10
        probe_daemon_alive "evctl delete" || return 0
        probe "$EVCTL" set fresh-two --value v
        probe "$EVCTL" list
        probe_daemon_alive "the whole probe" || return 0
}

# report WHAT: print the run's problems (the test fails at the end).
report() {
        if ((${#PROBLEMS[@]} > 0)); then
                local p
                printf '%s: PROBLEMS in %s: %d\n' "$TEST_NAME" "$1" "${#PROBLEMS[@]}" >&2
                for p in "${PROBLEMS[@]}"; do
                        printf '* %s\n' "$p" >&2
                done
                FAILED_RUNS+=("$1")
        fi
        PROBLEMS=()
        HANGS=0
}

# populate: 20 events in assorted states.
populate() {
        local i
        for i in $(seq 1 20); do
                case $((i % 4)) in
                0) expect_exit 0 "$EVCTL" set "e$i" --value "value $i" ;;
                1) expect_exit 0 "$EVCTL" create "e$i" ;;
                2) expect_exit 0 "$EVCTL" fail "e$i" "failure $i" ;;
                3) expect_exit 0 "$EVCTL" set "e$i" --once --value "once $i" ;;
                esac
        done
}

# scribble SEG OFFSET LENGTH: random bytes over [OFFSET, OFFSET+LENGTH),
# clipped to the segment's size (never growing it).
scribble() {
        local seg=$1 off=$2 len=$3 size
        size=$(stat -c %s "$seg")
        ((off < size)) || fail "segment $seg is only $size bytes, cannot scribble at $off"
        ((off + len <= size)) || len=$((size - off))
        say "scribbling $len random bytes at offset $off of $seg ($size bytes)"
        "$PY" - "$seg" "$off" "$len" <<'EOF'
import os, sys
seg, off, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(seg, os.O_WRONLY)
while n > 0:
    k = min(n, 1 << 20)
    os.pwrite(fd, os.urandom(k), off)
    off += k
    n -= k
os.close(fd)
EOF
}

# ---- run 1: the objects area ---------------------------------------------------------
check "run 1: random bytes over 64 KiB at offset 8192 (the waiter and holder tables) while evd runs"
evd_setup
[[ -n $EVD_SEGMENT && -f $EVD_SEGMENT ]] || fail "cannot find evd's segment (not in /proc/$EVD_PID/maps)"
say "segment: $EVD_SEGMENT"
populate
scribble "$EVD_SEGMENT" 8192 65536
export EVD_NO_AUTOSTART=1
probe_all
report "run 1 (waiter and holder tables)"

check "run 1a: random bytes over the slots of live objects (found by their names)"
"$PY" - "$EVD_SEGMENT" <<'EOF2' || fail "could not scribble over the objects"
import os, re, sys
seg = sys.argv[1]
data = open(seg, "rb").read()
# Names are looked for in the objects area only (after the header, whose
# size is its fifth 32-bit field): a pid or a time in the header can hold
# the same bytes as "e2\0" (pid 12901 does), and scribbling there would hit
# the header, which is run 2's business.
hdr = int.from_bytes(data[16:20], "little")
fd = os.open(seg, os.O_WRONLY)
hit = 0
for i in (2, 3, 4, 6, 7, 8, 11, 12, 13, 15, 16, 17, 18, 20):
    m = re.compile(rb"(?<![0-9A-Za-z._:@-])e%d\x00" % i).search(data, hdr)
    if not m:
        continue
    # from a little before the name (slot state, generation, lock) into
    # the payload after it
    off = max(hdr, m.start() - 256)
    os.pwrite(fd, os.urandom(1024), off)
    hit += 1
os.close(fd)
print("scribbled over %d object slots" % hit)
if hit == 0:
    sys.exit("no object name found in the segment")
EOF2
probe_all
report "run 1a (live object slots)"

check "run 1b: random bytes over everything after the first 4 KiB"
size=$(stat -c %s "$EVD_SEGMENT")
scribble "$EVD_SEGMENT" 4096 $((size - 4096))
probe_all
report "run 1b (whole segment after 4 KiB)"
alive "$EVD_PID" || fail "evd died"
unset EVD_NO_AUTOSTART

# ---- run 2: the header -----------------------------------------------------------------
check "run 2: random bytes over the header (first 4 KiB) while evd runs"
evd_setup
[[ -n $EVD_SEGMENT && -f $EVD_SEGMENT ]] || fail "cannot find evd's segment (not in /proc/$EVD_PID/maps)"
seg2=$EVD_SEGMENT
populate
scribble "$seg2" 0 4096
export EVD_NO_AUTOSTART=1
probe_all
report "run 2 (header, daemon running)"

check "run 2: evd replaced the scribbled segment with a new one and said so, naming the file"
grep -qE "segment $seg2 has a corrupt header .*; replacing it" "$EVD_DIR/evd.log" ||
        fail "evd did not log the corrupt header of $seg2: $(tail -n 5 "$EVD_DIR/evd.log")"
seg3=/dev/shm$(cat "$EVD_DIR/evd.segment")
[[ $seg3 != "$seg2" && -f $seg3 ]] || fail "evd.segment names no new segment: $seg3"
_SHM+=("$seg3")
[[ ! -e $seg2 ]] || fail "the replaced segment $seg2 was left behind"
expect_exit 0 "$EVCTL" set after-header --value fine
expect_exit 0 "$EVCTL" wait after-header --timeout 0
expect_stdout fine

check "run 2: with no daemon, evctl on a scribbled header exits 5 naming the file"
kill -TERM "$EVD_PID"
_reap "$EVD_PID" 5
((REAP_RC != 124)) || fail "evd did not exit within 5 s of SIGTERM"
scribble "$seg3" 0 4096
expect_error 5 "segment $seg3 has a bad magic number" "$EVCTL" wait after-header --timeout 0
probe "$EVCTL" set e1
probe "$EVCTL" list
report "run 2 (header, no daemon)"

check "run 2: evd started on a segment with a bad header replaces it with a new one and serves"
unset EVD_NO_AUTOSTART
evd_start
grep -qE "segment $seg3 is corrupt .*; replacing it with a new segment" "$EVD_DIR/evd.log" ||
        fail "evd did not log the corrupt segment $seg3: $(tail -n 5 "$EVD_DIR/evd.log")"
[[ ! -e $seg3 ]] || fail "evd left the corrupt segment $seg3 behind"
seg4=/dev/shm$(cat "$EVD_DIR/evd.segment")
[[ -f $seg4 ]] || fail "evd.segment names no segment: $seg4"
_SHM+=("$seg4")
expect_exit 0 "$EVCTL" set after-restart --value ok
expect_exit 0 "$EVCTL" list
expect_stdout_match '^after-restart '
alive "$EVD_PID" || fail "evd died"

# ---- run 3: an older evd's segment (an upgrade) ---------------------------------------
check "run 3: evd started on a segment of an older layout version replaces it and serves"
kill -TERM "$EVD_PID"
_reap "$EVD_PID" 5
((REAP_RC != 124)) || fail "evd did not exit within 5 s of SIGTERM"
# The layout version is the header's second 32-bit field.
"$PY" - "$seg4" <<'EOF2'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
v = int.from_bytes(os.pread(fd, 4, 4), "little")
os.pwrite(fd, (v - 1).to_bytes(4, "little"), 4)
os.close(fd)
EOF2
evd_start
grep -qE "segment $seg4 has layout version [0-9]+, this build knows [0-9]+ \(made by an older evd\): replacing it" "$EVD_DIR/evd.log" ||
        fail "evd did not log the older segment $seg4: $(tail -n 5 "$EVD_DIR/evd.log")"
[[ ! -e $seg4 ]] || fail "evd left the older segment $seg4 behind"
seg5=/dev/shm$(cat "$EVD_DIR/evd.segment")
[[ $seg5 != "$seg4" && -f $seg5 ]] || fail "evd.segment names no new segment: $seg5"
_SHM+=("$seg5")
expect_exit 0 "$EVCTL" set after-upgrade --value ok
expect_exit 0 "$EVCTL" wait after-upgrade --timeout 0
expect_stdout ok
alive "$EVD_PID" || fail "evd died"
((${#FAILED_RUNS[@]} == 0)) || fail "problems in: ${FAILED_RUNS[*]}"
exit 0
