#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fd-limit.sh - evd at its descriptor limit: raises its soft limit to the hard
# one at start; with more idle connections than its limit allows it neither
# spins (its CPU time stays low) nor floods its log, and a well-behaved evctl
# is still served (evd closes the connection idle the longest to make room).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python
command -v prlimit >/dev/null || skip "prlimit (util-linux) is not installed"

real_evd=$EVD
# evd_start runs "$EVD": a wrapper that execs evd under a descriptor limit
# (exec keeps the pid, so the helpers find the daemon as usual).
limited() {
        local w=$_SCRATCH/evd-nofile-$1-$2
        printf '#!/bin/sh\nexec prlimit --nofile=%s:%s %q "$@"\n' "$1" "$2" "$real_evd" >"$w"
        chmod +x "$w"
        printf '%s' "$w"
}

# nofile PID: "soft hard" of PID's descriptor limit.
nofile() { awk '/^Max open files/ { print $4, $5 }' "/proc/$1/limits"; }

# cpu_ticks PID: user + system time of PID, in clock ticks.
cpu_ticks() {
        local s
        s=$(cat "/proc/$1/stat")
        s=${s##*) }
        awk '{ print $12 + $13 }' <<<"$s"
}

check "evd raises its soft descriptor limit to the hard one"
evd_mkdir
EVD=$(limited 100 2048) evd_start
[[ $(nofile "$EVD_PID") == "2048 2048" ]] || fail "evd runs with a descriptor limit of $(nofile "$EVD_PID"), want 2048 2048"
evd_stop

check "more idle connections than the limit allows: evd stays idle, logs little, and serves evctl"
N=128
M=400
evd_mkdir
EVD=$(limited $N $N) evd_start
lines0=$(nlines "$EVD_DIR/evd.log")
# Open M connections and keep them, idle, until killed; say how many got
# through (a connect that waits 5 s for room is given up, and the opener
# stops after 5 of those: an evd that no longer accepts).
cat >"$_SCRATCH/idle.py" <<'PY'
import os, resource, socket, struct, sys, time
path, m, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks, failed = [], 0
for i in range(m):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # a blocking connect that waits at most 5 s for room in the backlog
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 5, 0))
    try:
        s.connect(path)
        socks.append(s)
    except OSError:
        s.close()
        failed += 1
        if failed >= 5:
            break
with open(report + ".tmp", "w") as f:
    f.write("%d %d\n" % (len(socks), failed))
os.rename(report + ".tmp", report)
while True:
    time.sleep(60)
PY
bg_start 200 "$PY" "$_SCRATCH/idle.py" "$EVD_DIR/evd.sock" "$M" "$_SCRATCH/idle.report"
idle=$BG_PID
wait_until "[[ -s '$_SCRATCH/idle.report' ]] || ! alive $idle" 120 || fail "the idle connections were not opened"
[[ -s $_SCRATCH/idle.report ]] || fail "the idle-connection opener died
$(bg_show "$idle")"
read -r opened failed <"$_SCRATCH/idle.report"
say "opened $opened idle connections ($failed attempts gave up) against a limit of $N"
((opened > N)) || fail "only $opened connections got through a limit of $N: evd stopped accepting"
alive "$EVD_PID" || fail "evd died"

# CPU over a window: a daemon spinning on accept() burns all of it; an idle
# one next to nothing.  The bound is generous so that a busy machine, which
# only slows evd down, cannot fail it.
t0=$(cpu_ticks "$EVD_PID")
sleep 2
t1=$(cpu_ticks "$EVD_PID")
hz=$(getconf CLK_TCK)
say "evd used $((t1 - t0)) ticks of CPU in 2 s (CLK_TCK $hz)"
(((t1 - t0) * 4 < 2 * hz)) || fail "evd used $((t1 - t0)) ticks of CPU in 2 s at its descriptor limit: it spins"

check "a well-behaved evctl is served at the limit"
for i in 1 2 3; do
        expect_exit 0 "$EVCTL" create "at-limit-$i"
done
expect_exit 0 "$EVCTL" list
expect_stdout_match '^at-limit-3 '

check "the log says so without flooding"
new=$(($(nlines "$EVD_DIR/evd.log") - lines0))
((new <= 5)) || fail "evd logged $new lines at its limit; last ones:
$(tail -n 5 "$EVD_DIR/evd.log")"
grep -q 'closing idle connections to make room' "$EVD_DIR/evd.log" ||
        fail "evd did not log that it closes idle connections; log:
$(tail -n 5 "$EVD_DIR/evd.log")"
exit 0
