#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-barriers.sh - barriers of a cluster namespace (evd --etcd) across
# three daemons (hosts) over a 3-member etcd cluster on localhost ports: a
# barrier of 6 parties over 3 hosts trips once all arrive and not before,
# rounds after rounds with arrival indexes 0..5 each; broken by a timeout on
# one host, by the death (SIGKILL) of a waiting party on another, by an
# abort, by a reset, by a failed barrier action, by a party that died while
# its host's daemon was down (once the daemon is back), and by the death of
# a host (its daemon SIGKILLed: its lease ends); the barrier action run with
# every party of every host arrived and none released; `show` on every
# host; more than 127 parties refused.
# Skipped when the etcd binaries are absent.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../cluster/hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/hosts.sh"
cluster_up

# A short host lease: the death of a host breaks its barriers after it.
TTL=3
# state_on I NAME WANT: host hI's `evctl show NAME` says state WANT (within
# the generous deadline).
state_on() {
        on "$1" wait_until "[[ \$(show_field $2 state) == '$3' ]]" 2>/dev/null ||
                fail "h$1: show $2 says state '$(on "$1" show_field "$2" state)', want '$3'"
}
# state_all NAME WANT: on every host.
state_all() {
        local i
        for i in 1 2 3; do state_on "$i" "$1" "$2"; done
}
# parties_on I NAME PARTIES N [ARGS...]: N parties waiting on hI (their
# pids appended to W).
parties_on() {
        local i=$1 name=$2 parties=$3 n=$4 k
        shift 4
        for ((k = 0; k < n; k++)); do
                on "$i" bg_start 240 "$EVCTL" barrier wait "$name" --parties "$parties" --timeout 200s "$@"
                W+=("$BG_PID")
        done
}
# two_waiting NAME I J: W is one party on hI and one on hJ, waiting on the
# barrier NAME of 3 parties, as every host shows.
two_waiting() {
        W=()
        parties_on "$2" "$1" 3 1
        parties_on "$3" "$1" 3 1
        state_all "$1" "2/3 waiting"
}
# none_ended PIDS...: fail if one of them has ended.
none_ended() {
        local n
        n=$(n_ended "$@")
        ((n == 0)) || fail "$n of the waiting parties were released before the last one arrived"
}
# trips_on I NAME: the barrier's round count (generation) on hI.
trips_on() {
        on "$1" "$EVCTL" list --json 2>/dev/null | tr '{' '\n' |
                awk -v n="\"name\":\"$2\"" 'index($0, n) { if (match($0, /"trips":[0-9]+/)) print substr($0, RSTART + 8, RLENGTH - 8) }'
}
for i in 1 2 3; do host_start "$i"; done

check "a barrier of 6 parties over 3 hosts: 5 arrived (as show says on every host) release nobody; the 6th releases all, indexes 0..5; three rounds"
for round in 1 2 3; do
        W=()
        parties_on 1 six 6 2
        parties_on 2 six 6 2
        parties_on 3 six 6 1
        state_all six "5/6 waiting"
        if ((round == 1)); then
                # each host names its own parties and counts the others'
                for want in 1:3 2:3 3:4; do
                        on "${want%:*}" wait_until "\"\$EVCTL\" show six | grep -x 'parties on other hosts: ${want#*:}' >/dev/null" ||
                                fail "h${want%:*}: show six does not count ${want#*:} parties on other hosts: $(on "${want%:*}" "$EVCTL" show six)"
                done
        fi
        none_ended "${W[@]}"
        parties_on 3 six 6 1
        outs=()
        for p in "${W[@]}"; do
                bg_expect "$p" 0
                outs+=("$(cat "$(bg_out "$p")")")
        done
        got=$(printf '%s\n' "${outs[@]}" | sort -n | tr '\n' ' ')
        [[ $got == "0 1 2 3 4 5 " ]] || fail "round $round: the parties printed '$got', want each of 0..5 once"
        state_all six "0/6 waiting"
        for i in 1 2 3; do
                on "$i" wait_until "[[ \$(trips_on $i six) == $round ]]" 2>/dev/null ||
                        fail "h$i: six shows $(trips_on "$i" six) rounds, want $round"
        done
done

check "a timeout on h1 breaks the barrier for every party on every host (exit 1 there, 3 elsewhere)"
W=()
parties_on 2 tmo 5 2
parties_on 3 tmo 5 1
state_all tmo "3/5 waiting"
on 1 expect_error 1 "tmo" "$EVCTL" barrier wait tmo --parties 5 --timeout 2s
for p in "${W[@]}"; do bg_expect "$p" 3; done
grep -q broken "$(bg_err "${W[0]}")" || fail "a party did not say the barrier is broken: $(cat "$(bg_err "${W[0]}")")"
state_all tmo broken
check "a broken barrier refuses a new party on any host until a reset on one"
on 3 expect_exit 3 "$EVCTL" barrier wait tmo --parties 5 --timeout 0
on 2 expect_exit 0 "$EVCTL" barrier reset tmo
state_all tmo "0/5 waiting"

check "the death (SIGKILL) of a waiting party on h2 breaks the barrier for the parties on h1 and h3"
W=()
parties_on 1 death 4 1
parties_on 2 death 4 1
victim=${W[1]}
parties_on 3 death 4 1
state_all death "3/4 waiting"
child=$(bg_child "$victim") || fail "no evctl under the victim's timeout"
kill -KILL "$child"
bg_expect "${W[0]}" 3
bg_expect "${W[2]}" 3
bg_wait "$victim"
state_all death broken
on 1 expect_exit 0 "$EVCTL" barrier reset death

check "abort on h2 breaks the parties waiting on h1 and h3; reset on h3 makes it usable everywhere"
two_waiting ab 1 3
on 2 expect_exit 0 "$EVCTL" barrier abort ab
for p in "${W[@]}"; do bg_expect "$p" 3; done
state_all ab broken
on 3 expect_exit 0 "$EVCTL" barrier reset ab
state_all ab "0/3 waiting"
two_waiting ab 1 2
parties_on 3 ab 3 1
for p in "${W[@]}"; do bg_expect "$p" 0; done

check "a reset on h3 sends the parties waiting on h1 and h2 away broken (exit 3) and opens a new round"
two_waiting rs 1 2
on 3 expect_exit 0 "$EVCTL" barrier reset rs
for p in "${W[@]}"; do bg_expect "$p" 3; done
state_all rs "0/3 waiting"
W=()
for i in 1 2 3; do parties_on "$i" rs 3 1; done
for p in "${W[@]}"; do bg_expect "$p" 0; done

check "more than 127 parties are refused in a cluster namespace, saying why"
on 1 expect_error 2 "at most 127 parties" "$EVCTL" barrier wait big --parties 200 --timeout 0
on 1 expect_exit 0 "$EVCTL" barrier wait one --parties 1 --timeout 0

check "a barrier action (Python, on h3) runs with every party of every host arrived and none released"
if [[ -n $PY ]]; then
        # libevd of this build, next to the evctl under test
        export EVD_LIBEVD=${EVD_LIBEVD:-$(dirname "$(dirname "$EVCTL")")/lib/libevd.so.1}
        export PYTHONPATH=$SOURCE_ROOT/python
        ACT=$_SCRATCH/act
        mkdir -p "$ACT"
        # The action says it runs, then holds the round until the test
        # says go (a handshake, with a generous deadline for a hang).
        cat >"$ACT/party.py" <<'PYEOF'
import os, sys, time, threading, evd
d, mode = sys.argv[1], sys.argv[2]
def action():
        open(os.path.join(d, "ran"), "a").write("ran\n")
        if mode == "fail":
                raise KeyError("from the action")
        end = time.monotonic() + 200
        while not os.path.exists(os.path.join(d, "go")) and time.monotonic() < end:
                time.sleep(0.02)
b = evd.Barrier(3, action=action, name=sys.argv[3])
try:
        print(b.wait(200))
except KeyError:
        sys.exit(7)
except threading.BrokenBarrierError:
        sys.exit(3)
PYEOF
        W=()
        parties_on 1 act 3 1
        parties_on 2 act 3 1
        state_all act "2/3 waiting"
        on 3 bg_start 240 "$PY_EVD" "$ACT/party.py" "$ACT" ok act
        pyp=$BG_PID
        wait_until "[[ -f $ACT/ran ]]" || fail "the action did not run: $(cat "$(bg_err "$pyp")")"
        state_all act "3/3 waiting"
        none_ended "${W[@]}"
        touch "$ACT/go"
        bg_expect "$pyp" 0 2
        for p in "${W[@]}"; do bg_expect "$p" 0; done
        [[ $(nlines "$ACT/ran") == 1 ]] || fail "the action ran $(nlines "$ACT/ran") times"
        state_all act "0/3 waiting"
        check "an action that fails breaks the round on every host (the others exit 3)"
        W=()
        parties_on 1 act 3 1
        parties_on 2 act 3 1
        state_all act "2/3 waiting"
        on 3 bg_start 240 "$PY_EVD" "$ACT/party.py" "$ACT" fail act
        bg_expect "$BG_PID" 7
        for p in "${W[@]}"; do bg_expect "$p" 3; done
        state_all act broken
else
        say "python3 is absent: the action is not tested"
fi

check "a party that dies while its host's daemon is down breaks the round when the daemon is back (through etcd, long before the lease ends)"
# Host h4 has a long lease (60 s): the break must come from the restarted
# daemon's first scan of its holders, not from the lease.
TTL=60 host_start 4
W=()
parties_on 1 rst 3 1
parties_on 4 rst 3 1
state_on 1 rst "2/3 waiting"
state_on 4 rst "2/3 waiting"
host_kill 4
kill -KILL "$(bg_child "${W[1]}")"
bg_wait "${W[1]}"
t0=$(now_ms)
TTL=60 host_start 4
on 1 wait_until "! alive ${W[0]}" 40 ||
        fail "the party on h1 still waits 40 s after h4's daemon came back without its dead party"
bg_expect "${W[0]}" 3
say "broken $(($(now_ms) - t0)) ms after h4's daemon was started again"
state_on 1 rst broken
state_on 4 rst broken

check "the death of host h3 (its daemon SIGKILLed) breaks the barrier for h1 and h2 once its lease ends"
W=()
parties_on 1 host 4 1
parties_on 2 host 4 1
parties_on 3 host 4 1
orphan=${W[2]}
state_all host "3/4 waiting"
t0=$(now_ms)
host_kill 3
# The lease (3 s) plus a leader change's TTL and a loaded machine: 60 s.
on 1 wait_until "! alive ${W[0]} && ! alive ${W[1]}" 60 ||
        fail "the parties on h1 and h2 still wait 60 s after h3's daemon died"
bg_expect "${W[0]}" 3
bg_expect "${W[1]}" 3
say "broken $(($(now_ms) - t0)) ms after h3's daemon was killed (lease TTL ${TTL} s)"
state_on 1 host broken
state_on 2 host broken
kill -KILL "$(bg_child "$orphan")" 2>/dev/null || true
bg_wait "$orphan"
say "ok"
