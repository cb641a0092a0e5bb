#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# hostile.sh - hostile clients against a running evd, while well-behaved
# clients keep working.
#
# Well-behaved clients run from start to end: a ping-pong of two auto events
# (each round's value must come back; a lost wake-up shows as a wait that
# times out after a generous 60 s) and three `sem run` loops on a semaphore
# of two slots (never more than two inside at once).  Then, one named step
# at a time:
#   malformed  garbage, half-sent and lying protocol messages (hostile.py),
#              with idle and half-sent connections held open
#   idle       2000 idle connections (evd is started with the soft
#              descriptor limit most sessions get, 1024: it must raise it)
#   flood      1500 creates from 8 parallel clients into a namespace that
#              grows from 64 to 1024: each exits 0 or 7 (full) with one
#              clear line
#   scribble   random bytes over object slots (not the well-behaved
#              clients' ones) while everything runs
#   truncate   the segment truncated to 4096 bytes while everything runs
# After each step: the daemon is alive and answers a create, and every
# well-behaved loop has made progress during the step (a handshake on its
# round counter, with a deadline for a hang only: no timing is measured).
# Every command runs under timeout(1).  At the end each step is reported
# as ok or FAILED with its reasons.
set -euo pipefail
# A bound for one command that should not block: generous, for a machine
# whose cores are all busy.
: "${T_CALL:=30}"
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python
command -v truncate >/dev/null || skip "truncate(1) is needed"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HP=("$PY" "$here/hostile.py")
W=$_SCRATCH/hostile
mkdir -p "$W"
: >"$W/errors"
: >"$W/violations"
CAPACITY=1024
DEADLINE=120 # seconds for a handshake: a bound for a hang, not a measurement

# ---- steps ------------------------------------------------------------------

STEP=setup
STEP_PROBLEMS=()
RESULTS=()
BAD=0

step_begin() {
        STEP=$1
        STEP_PROBLEMS=()
        STEP_START=$SECONDS
        printf '%s\n' "$STEP" >"$W/step"
        say "== step $STEP"
}

# problem MSG: something the current step got wrong (the step goes on where
# it can; it is reported at its end).
problem() {
        STEP_PROBLEMS+=("$*")
        say "  problem: $*"
}

step_end() {
        local n=${#STEP_PROBLEMS[@]} why took=" ($((SECONDS - STEP_START))s)"
        why=$(printf '%s; ' "${STEP_PROBLEMS[@]}")
        if ((n)); then
                RESULTS+=("$STEP$took: FAILED: ${why%; }")
                BAD=1
        else
                RESULTS+=("$STEP$took: ok")
        fi
        say "${RESULTS[-1]}"
}

# ---- well-behaved clients ------------------------------------------------------
# Each appends "STEP what exit-code" to $W/errors when a command fails, and
# publishes its round counter in a file (written whole, then renamed).

cat >"$W/pinger.sh" <<'EOF'
#!/usr/bin/env bash
E=$1 W=$2 i=0
err() { printf '%s pinger %s\n' "$(cat "$W/step")" "$*" >>"$W/errors"; }
while [[ ! -e $W/stop ]]; do
        i=$((i + 1))
        rc=0
        timeout -k 2 60 "$E" set ping --value "$i" 2>>"$W/pinger.err" || rc=$?
        if ((rc)); then
                err "set ping: exit $rc"
                sleep 0.2
                continue
        fi
        # The answer to this round; older ones (after an error) are skipped.
        # Once told to stop, the ponger may be gone and pong may keep an
        # older value: stop here too, or this loop never ends.
        while [[ ! -e $W/stop ]]; do
                rc=0
                v=$(timeout -k 2 90 "$E" wait pong --timeout 60 2>>"$W/pinger.err") || rc=$?
                if ((rc)); then
                        err "wait pong (round $i): exit $rc"
                        sleep 0.2
                        break
                fi
                [[ $v =~ ^[0-9]+$ ]] && ((v < i)) && continue
                [[ $v == "$i" ]] || err "round $i: pong came back with '$v'"
                printf '%s\n' "$i" >"$W/ping.rounds.tmp" && mv "$W/ping.rounds.tmp" "$W/ping.rounds"
                break
        done
done
timeout -k 2 30 "$E" set ping --value stop 2>/dev/null || true
EOF

cat >"$W/ponger.sh" <<'EOF'
#!/usr/bin/env bash
E=$1 W=$2
err() { printf '%s ponger %s\n' "$(cat "$W/step")" "$*" >>"$W/errors"; }
while [[ ! -e $W/stop ]]; do
        rc=0
        v=$(timeout -k 2 90 "$E" wait ping --timeout 60 2>>"$W/ponger.err") || rc=$?
        if ((rc)); then
                [[ -e $W/stop ]] || err "wait ping: exit $rc"
                sleep 0.2
                continue
        fi
        [[ $v == stop ]] && break
        rc=0
        timeout -k 2 60 "$E" set pong --value "$v" 2>>"$W/ponger.err" || rc=$?
        ((rc == 0)) || err "set pong: exit $rc"
done
EOF

# Inside the semaphore: count who else is inside.
cat >"$W/inside.sh" <<'EOF'
#!/usr/bin/env bash
d=$1/inside
: >"$d/$$"
k=$(find "$d" -type f | wc -l)
((k <= 2)) || printf '%s %s holders inside a semaphore of 2\n' "$(cat "$1/step")" "$k" >>"$1/violations"
rm -f "$d/$$"
EOF

cat >"$W/semrun.sh" <<'EOF'
#!/usr/bin/env bash
E=$1 W=$2 id=$3 n=0
while [[ ! -e $W/stop ]]; do
        rc=0
        timeout -k 2 90 "$E" sem run slots --timeout 60 -- bash "$W/inside.sh" "$W" \
                2>>"$W/sem.$id.err" || rc=$?
        if ((rc)); then
                printf '%s sem-run-%s exit %s\n' "$(cat "$W/step")" "$id" "$rc" >>"$W/errors"
                sleep 0.2
                continue
        fi
        n=$((n + 1))
        printf '%s\n' "$n" >"$W/sem.$id.rounds.tmp" && mv "$W/sem.$id.rounds.tmp" "$W/sem.$id.rounds"
done
EOF
mkdir -p "$W/inside"

rounds() { cat "$1" 2>/dev/null || echo 0; }

# progress: every well-behaved loop completes two more rounds (bounded).
progress() {
        local p0 s1 s2 s3
        p0=$(rounds "$W/ping.rounds")
        s1=$(rounds "$W/sem.1.rounds")
        s2=$(rounds "$W/sem.2.rounds")
        s3=$(rounds "$W/sem.3.rounds")
        wait_until "(( \$(rounds '$W/ping.rounds') >= $p0 + 2 ))" "$DEADLINE" ||
                problem "the ping-pong made no progress (stuck at round $p0)"
        wait_until "(( \$(rounds '$W/sem.1.rounds') >= $s1 + 2 && \$(rounds '$W/sem.2.rounds') >= $s2 + 2 && \$(rounds '$W/sem.3.rounds') >= $s3 + 2 ))" "$DEADLINE" ||
                problem "a sem run loop made no progress (rounds $(rounds "$W/sem.1.rounds") $(rounds "$W/sem.2.rounds") $(rounds "$W/sem.3.rounds"), were $s1 $s2 $s3)"
}

# serving: evd is alive and creates (and deletes) an object.
serving() {
        alive "$EVD_PID" || {
                problem "evd (pid $EVD_PID) is dead"
                return 0
        }
        local name=probe-$STEP-$RANDOM
        run "$EVCTL" create "$name"
        if ((LAST_RC != 0)); then
                problem "evctl create exits $LAST_RC: $(head -c 300 "$LAST_ERR_F")"
                return 0
        fi
        run "$EVCTL" delete "$name"
        ((LAST_RC == 0)) || problem "evctl delete exits $LAST_RC: $(head -c 300 "$LAST_ERR_F")"
}

# client_errors [TOLERATE]: the well-behaved clients' errors in this step;
# with TOLERATE, only the ones of a signal or a hang (exit >= 124) count.
client_errors() {
        local lines
        lines=$(awk -v s="$STEP" '$1 == s' "$W/errors")
        if [[ -n ${1:-} ]]; then
                lines=$(printf '%s\n' "$lines" | awk '{ c = $NF } c + 0 >= 124')
        fi
        [[ -z $lines ]] || problem "well-behaved clients failed: $(printf '%s' "$lines" | head -n 5 | tr '\n' '|')"
        lines=$(awk -v s="$STEP" '$1 == s' "$W/violations")
        [[ -z $lines ]] || problem "more holders than slots: $(printf '%s' "$lines" | head -n 3 | tr '\n' '|') (evd gave back $(grep -c 'gave back' "$EVD_DIR/evd.log" || true) hold(s) so far)"
}

# ---- set-up -------------------------------------------------------------------

step_begin setup
evd_mkdir
# The soft descriptor limit most sessions get: evd is to raise it to the
# hard limit by itself (the idle step needs more).
soft=$(ulimit -Sn)
if [[ $soft == unlimited ]] || ((soft > 1024)); then
        ulimit -Sn 1024
fi
evd_start --capacity 64 --max-capacity "$CAPACITY"
ulimit -Sn "$soft"
[[ -n $EVD_SEGMENT ]] || fail "cannot find evd's segment"
expect_exit 0 "$EVCTL" create ping --auto
expect_exit 0 "$EVCTL" create pong --auto
expect_exit 0 "$EVCTL" sem create slots --max 2
bg_start 1800 bash "$W/ponger.sh" "$EVCTL" "$W"
PONGER=$BG_PID
bg_start 1800 bash "$W/pinger.sh" "$EVCTL" "$W"
PINGER=$BG_PID
SEMRUN=()
for id in 1 2 3; do
        bg_start 1800 bash "$W/semrun.sh" "$EVCTL" "$W" "$id"
        SEMRUN+=("$BG_PID")
done
progress
client_errors
step_end

# ---- malformed ----------------------------------------------------------------

step_begin malformed
bg_start 600 "${HP[@]}" malformed "$EVD_DIR/evd.sock" "$W/until.malformed"
MAL=$BG_PID
if wait_until "grep -q '^ready' '$(bg_out "$MAL")' || ! alive $MAL" "$DEADLINE" &&
        grep -q '^ready' "$(bg_out "$MAL")"; then
        say "  $(head -n 1 "$(bg_out "$MAL")") bad messages sent; connections held open"
        progress
        serving
else
        problem "hostile.py did not get through its bad messages"
fi
: >"$W/until.malformed"
bg_wait "$MAL"
((BG_RC == 0)) || problem "hostile.py malformed: exit $BG_RC: $(head -c 300 "$(bg_err "$MAL")")"
serving
client_errors
step_end

# ---- idle -----------------------------------------------------------------------

step_begin idle
N=2000
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < N + 200)); then
        N=$((hard - 200))
        say "  the hard descriptor limit is $hard: $N idle connections"
fi
dlim=$(awk '/^Max open files/ { print $4 }' "/proc/$EVD_PID/limits")
say "  evd's soft descriptor limit: $dlim"
low=0
[[ $dlim != unlimited ]] && ((dlim < N + 64)) && low=1
# Connecting is bounded by the handshake deadline; when evd's limit is too
# low to accept them all anyway, a short try shows it.
bg_start 600 "${HP[@]}" idle "$EVD_DIR/evd.sock" "$N" $((low ? 10 : DEADLINE)) "$W/until.idle"
IDLE=$BG_PID
wait_until "grep -q '^connected' '$(bg_out "$IDLE")' || ! alive $IDLE" "$DEADLINE" ||
        problem "hostile.py idle did not finish connecting: $(head -c 300 "$(bg_err "$IDLE")")"
say "  hostile.py: $(head -n 1 "$(bg_out "$IDLE")")"
if ((low)); then
        # evd raises its soft limit to the hard one at start: only a hard
        # limit this low leaves it unable to accept them all.
        problem "evd's soft descriptor limit ($dlim) is too low for $N connections"
else
        # evd has accepted them all (it holds a descriptor for each).
        wait_until "(( \$(ls /proc/$EVD_PID/fd 2>/dev/null | wc -l) >= $N ))" "$DEADLINE" ||
                problem "evd holds $(find "/proc/$EVD_PID/fd" -mindepth 1 2>/dev/null | wc -l) descriptors, not the $N idle connections"
fi
progress
serving
: >"$W/until.idle"
bg_wait "$IDLE"
((BG_RC == 0)) || problem "hostile.py idle: exit $BG_RC: $(head -c 300 "$(bg_err "$IDLE")")"
serving
client_errors
step_end

# ---- flood ----------------------------------------------------------------------

step_begin flood
# Half as many again as the namespace holds: enough to fill it and be
# refused hundreds of times, few enough to stay quick on a busy machine.
FLOOD_N=1500
: >"$W/flood.out"
# Each client's exit code and error line go out in one write of one line
# (evctl writes its error line in pieces: parallel writers would mix them).
cat >"$W/flood-some.sh" <<'EOF'
#!/usr/bin/env bash
E=$1 W=$2
shift 2
for n in "$@"; do
        e=$(timeout -k 2 60 "$E" create "flood-$n" 2>&1 >/dev/null)
        rc=$?
        printf '%s\t%s\n' "$rc" "$e" >>"$W/flood.out"
done
EOF
seq 1 "$FLOOD_N" >"$W/flood.names"
bg_start 900 xargs -P 8 -n 50 -a "$W/flood.names" bash "$W/flood-some.sh" "$EVCTL" "$W"
FLOOD=$BG_PID
# The well-behaved clients keep going meanwhile.
progress
bg_wait "$FLOOD"
((BG_RC == 0)) || problem "the flood's xargs exits $BG_RC"
cut -f 1 "$W/flood.out" >"$W/flood.rc"
awk -F '\t' '$1 != 0 { print $2 }' "$W/flood.out" >"$W/flood.err"
n_ok=$(grep -cx 0 "$W/flood.rc" || true)
n_full=$(grep -cx 7 "$W/flood.rc" || true)
n_all=$(wc -l <"$W/flood.rc")
say "  $FLOOD_N creates: $n_ok made, $n_full refused as full, $((n_all - n_ok - n_full)) other"
((n_all == FLOOD_N)) || problem "$n_all exit lines for $FLOOD_N creates"
((n_ok + n_full == n_all)) ||
        problem "creates exited other than 0 or 7: $(sort "$W/flood.rc" | uniq -c | tr -s ' \n' ' ')"
((n_ok == CAPACITY - 3)) || problem "$n_ok creates made, expected the $((CAPACITY - 3)) free slots"
n_err=$(wc -l <"$W/flood.err")
((n_err == n_full)) || problem "$n_full creates refused, with $n_err error lines"
if grep -v '^evctl: .*full' "$W/flood.err" | head -n 3 | grep . >/dev/null; then
        problem "unclear refusals: $(grep -v '^evctl: .*full' "$W/flood.err" | head -n 3 | tr '\n' '|')"
fi
run "$EVCTL" create one-more
((LAST_RC == 7)) || problem "a create into the full namespace exits $LAST_RC, not 7"
[[ $(nlines "$LAST_ERR_F") == 1 ]] || problem "a create into the full namespace: not one error line"
say "  full: $(head -n 1 "$LAST_ERR_F")"
for i in 1 2 3 4 5 6 7 8; do
        run "$EVCTL" delete "flood-$i"
        ((LAST_RC == 0 || LAST_RC == 4)) || problem "evctl delete flood-$i exits $LAST_RC"
done
serving
progress
client_errors
step_end

# ---- scribble -------------------------------------------------------------------

# probe CMD...: a client command on a scribbled namespace exits by itself
# (no signal, no hang) with at most one error line.
probe() {
        T_CALL=20 run "$@"
        if ((LAST_RC >= 124)); then
                problem "$(_q "$@") exits $LAST_RC (a signal or a hang)"
        elif (($(nlines "$LAST_ERR_F") > 1)); then
                problem "$(_q "$@") printed more than one error line"
        fi
}

step_begin scribble
for round in 1 2 3 4 5; do
        T_CALL=30 run "${HP[@]}" scribble "$EVD_SEGMENT" 60 "$round" ping pong slots
        ((LAST_RC == 0)) || problem "hostile.py scribble: exit $LAST_RC: $(head -c 300 "$LAST_ERR_F")"
        say "  round $round: $LAST_OUT"
        probe "$EVCTL" list
        probe "$EVCTL" list --json
        for i in $((round * 97 % 1000 + 10)) $((round * 389 % 1000 + 10)) $((round * 631 % 1000 + 10)); do
                probe "$EVCTL" show "flood-$i"
                probe "$EVCTL" set "flood-$i" --value scribbled
                probe "$EVCTL" wait "flood-$i" --timeout 0
                probe "$EVCTL" delete "flood-$i"
        done
        probe "$EVCTL" create "after-scribble-$round"
        alive "$EVD_PID" || {
                problem "evd died after scribble round $round"
                break
        }
done
serving
progress
client_errors
step_end

# ---- truncate -------------------------------------------------------------------

step_begin truncate
truncate -s 4096 "$EVD_SEGMENT"
say "  truncated $EVD_SEGMENT to 4096 bytes"
probe "$EVCTL" list
probe "$EVCTL" show ping
probe "$EVCTL" set pong --value truncated
probe "$EVCTL" wait ping --timeout 0
# The daemon is to survive and restore the segment: list works again.
wait_until "timeout -k 1 10 '$EVCTL' list >/dev/null 2>&1" 60 ||
        problem "evctl list does not work again within 60 s of the truncation"
alive "$EVD_PID" || problem "evd died after the truncation"
run "$EVCTL" create after-truncate
((LAST_RC == 0)) || problem "a create after the truncation exits $LAST_RC: $(head -c 300 "$LAST_ERR_F")"
client_errors tolerate
step_end

# ---- end ----------------------------------------------------------------------------

STEP=end
printf 'end\n' >"$W/step"
: >"$W/stop"
for p in "$PINGER" "$PONGER" "${SEMRUN[@]}"; do
        bg_wait "$p"
        ((BG_RC != 124)) || {
                RESULTS+=("end: a well-behaved loop did not stop: $(bg_show "$p")")
                BAD=1
        }
done
say "ping-pong rounds: $(rounds "$W/ping.rounds"); sem run rounds: $(rounds "$W/sem.1.rounds") $(rounds "$W/sem.2.rounds") $(rounds "$W/sem.3.rounds")"
say "== results"
for r in "${RESULTS[@]}"; do
        say "  $r"
done
((BAD == 0)) || fail "some steps failed (see above)"
say "ok"
