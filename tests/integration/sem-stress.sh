#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sem-stress.sh - many processes take and give back one semaphore through
# `evctl sem run` for a bounded time, while a shared counter (kept under
# flock(1)) checks the invariants: never more than --max holders at once,
# every acquire matched by exactly one release, every run exits 0, and at the
# end the semaphore is full again with nobody listed as a holder.  Before
# that, --max holders prove that the slots are shared, not handed out one at
# a time: they meet at a barrier of --max parties from inside the semaphore,
# which can only trip when all of them hold a slot at once.  No check here
# depends on how fast the machine is.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python
command -v flock >/dev/null || skip "flock(1) is needed"

WORKERS=${SEM_STRESS_WORKERS:-12}
MAX=${SEM_STRESS_MAX:-3}
SECS=${SEM_STRESS_SECS:-5}

evd_setup

check "$MAX holders of a semaphore of $MAX meet at a barrier of $MAX inside it; one more is refused"
expect_exit 0 "$EVCTL" sem create F --max "$MAX"
mkdir -p "$_SCRATCH/met"
meet=()
for ((i = 0; i < MAX; i++)); do
        # Inside the slot: wait until all MAX holders are inside too, say so,
        # then stay until the test has looked.
        bg_start 300 "$EVCTL" sem run F --timeout 120s -- sh -c \
                '"$1" barrier wait meet --parties "$2" --timeout 120s >/dev/null &&
                 : >"$3/$$" && "$1" wait go --timeout 120s' sh "$EVCTL" "$MAX" "$_SCRATCH/met"
        meet+=("$BG_PID")
done
wait_until "(( \$(ls '$_SCRATCH/met' | wc -l) == $MAX ))" ||
        fail "the $MAX holders did not all get through the barrier of $MAX (barrier: $(show_field meet state))"
expect_exit 0 "$EVCTL" sem value F
expect_stdout 0
expect_error 1 "F" "$EVCTL" sem acquire F --owner $$ --timeout 0
expect_exit 0 "$EVCTL" set go
for p in "${meet[@]}"; do
        bg_expect "$p" 0
done

expect_exit 0 "$EVCTL" sem create S --max "$MAX"

W=$_SCRATCH/stress
mkdir -p "$W"
echo 0 >"$W/count"   # holders right now
echo 0 >"$W/high"    # most holders seen at once
: >"$W/lock"

# What each `sem run` executes while it holds a slot: count itself in, check
# the bound, stay a little, count itself out.  Each step is logged (one line
# per enter and per leave) so that acquires and releases can be matched.
cat >"$W/body.sh" <<'EOF'
#!/bin/sh
W=$1 MAX=$2 ID=$3
n=$(flock "$W/lock" sh -c '
        n=$(( $(cat "$1/count") + 1 ))
        echo "$n" >"$1/count"
        [ "$n" -gt "$(cat "$1/high")" ] && echo "$n" >"$1/high"
        echo "$n"' sh "$W") || exit 90
if [ "$n" -gt "$MAX" ]; then
        echo "worker $ID saw $n holders at once (max $MAX)" >>"$W/violation"
fi
echo "enter $ID $$" >>"$W/journal.$ID"
sleep 0.01
echo "leave $ID $$" >>"$W/journal.$ID"
flock "$W/lock" sh -c 'echo $(( $(cat "$1/count") - 1 )) >"$1/count"' sh "$W" || exit 91
exit 0
EOF
chmod +x "$W/body.sh"

# One worker: `sem run` over and over until the deadline; every exit code
# is recorded.
cat >"$W/worker.sh" <<'EOF'
#!/bin/bash
W=$1 MAX=$2 ID=$3 DEADLINE=$4 EVCTL=$5
runs=0
while (( $(date +%s%N) < DEADLINE )); do
        "$EVCTL" sem run S --timeout 120s -- "$W/body.sh" "$W" "$MAX" "$ID"
        echo "$?" >>"$W/rc.$ID"
        runs=$((runs + 1))
done
echo "$runs" >"$W/runs.$ID"
EOF
chmod +x "$W/worker.sh"

check "$WORKERS workers run 'sem run S' (max $MAX) for ${SECS}s"
deadline=$(($(date +%s%N) + SECS * 1000000000))
workers=()
for ((i = 0; i < WORKERS; i++)); do
        bg_start $((SECS + 150)) "$W/worker.sh" "$W" "$MAX" "$i" "$deadline" "$EVCTL"
        workers+=("$BG_PID")
done
for p in "${workers[@]}"; do
        bg_expect "$p" 0
done

check "no more than $MAX held at once"
if [[ -s $W/violation ]]; then
        fail "the bound was broken:
$(head -n 20 "$W/violation")"
fi
high=$(cat "$W/high")
say "most holders at once: $high (max $MAX)"
((high <= MAX)) || fail "high-water mark $high above --max $MAX"
[[ $(cat "$W/count") == 0 ]] || fail "the counter ended at $(cat "$W/count"), not 0: a run counted itself in but not out"

check "every run exited 0, and every acquire was matched by a release"
total=0
for ((i = 0; i < WORKERS; i++)); do
        [[ -s $W/runs.$i ]] || fail "worker $i did not finish"
        runs=$(cat "$W/runs.$i")
        ((runs > 0)) || fail "worker $i never got a slot"
        total=$((total + runs))
        bad=$(grep -cvx 0 "$W/rc.$i" || true)
        ((bad == 0)) || fail "worker $i: $bad of $runs runs did not exit 0: $(sort "$W/rc.$i" | uniq -c | tr '\n' ' ')"
        enters=$(grep -c '^enter ' "$W/journal.$i" || true)
        leaves=$(grep -c '^leave ' "$W/journal.$i" || true)
        ((enters == runs && leaves == runs)) ||
                fail "worker $i: $runs runs but $enters enters and $leaves leaves"
done
say "$total runs by $WORKERS workers in ${SECS}s"

check "the semaphore is full again and lists no holder"
expect_exit 0 "$EVCTL" sem value S
expect_stdout "$MAX"
expect_exit 0 "$EVCTL" list --json
"$PY" - "$LAST_OUT_F" "$MAX" "$total" <<'EOF' || fail "list --json disagrees
$(_show_last)"
import json, sys
objs = {o["name"]: o for o in json.load(open(sys.argv[1]))}
s = objs["S"]
want_max, runs = int(sys.argv[2]), int(sys.argv[3])
problems = []
if s["type"] != "semaphore": problems.append("type %r" % s["type"])
if s["max"] != want_max: problems.append("max %r" % s["max"])
if s["free"] != want_max: problems.append("free %r" % s["free"])
if s["holders"] != []: problems.append("holders %r" % s["holders"])
if s["waiters"] != 0: problems.append("waiters %r" % s["waiters"])
if s["acquires"] != runs: problems.append("acquires %r, runs %d" % (s["acquires"], runs))
if problems:
    sys.exit("S: " + ", ".join(problems))
EOF
expect_exit 0 "$EVCTL" show S
expect_stdout_match "^state: $MAX/$MAX free$"
grep -q '^holder:' "$LAST_OUT_F" && fail "show still lists a holder
$(_show_last)"
alive "$EVD_PID" || fail "evd died"
exit 0
