#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-waits.sh - what a process on one host of a cluster namespace (evd
# --etcd) sees of the changes made on the others: `evctl watch` on h2
# prints h1's create, set, clear, fail and delete in order; `wait --all` on
# h2 returns only once its events are set on h1 and h3; `wait --any` across
# hosts; `--progress` on a waiter whose setter is on another host; `--once`
# with setters racing on three hosts (exactly one wins, every host agrees
# on its value).  Three daemons on separate runtime directories over a
# 3-member etcd cluster on localhost ports.  Every step is a handshake:
# waiter counts from `evctl show`, a watch's printed lines, the progress
# lines a waiter printed.  Skipped when the etcd binaries are absent.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../cluster/hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/hosts.sh"
need_python
cluster_up

ISO='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.,]+(Z|[+-][0-9:]+)?'
for i in 1 2 3; do host_start "$i"; done
# nvcsw PID: how many times PID has gone to sleep (its voluntary context
# switches); a waiter on a futex goes to sleep again only after a wake-up.
nvcsw() { awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$1/status"; }
# lines_of PID N: the background command PID has printed N lines or more.
lines_of() {
        wait_until "(( \$(nlines '$(bg_out "$1")') >= $2 ))" ||
                fail "no line $2 from the background command
$(bg_show "$1")"
}
# line PID K RE: line K of what PID printed matches RE (after the time).
line() {
        sed -n "$2p" "$(bg_out "$1")" | grep -E "^$ISO $3\$" >/dev/null ||
                fail "line $2 is not 'TIME $3'
$(bg_show "$1")"
}

check "watch on h2 prints what h1 does to an event: created, set, clear, failed, deleted, in order"
on 2 bg_start 240 "$EVCTL" watch --count 5
w=$BG_PID
c=$(bg_child "$w") && wait_until "in_futex $c" || fail "watch on h2 did not start watching"
# One change at a time, each once h2's watch has printed the last one, so
# that every line is due (a watch coalesces what happens between two looks).
on 1 expect_exit 0 "$EVCTL" create wx
lines_of "$w" 1
on 1 expect_exit 0 "$EVCTL" set wx --value v1
lines_of "$w" 2
on 1 expect_exit 0 "$EVCTL" clear wx
lines_of "$w" 3
on 1 expect_exit 0 "$EVCTL" fail wx "disk full"
lines_of "$w" 4
on 1 expect_exit 0 "$EVCTL" delete wx
bg_expect "$w" 0
[[ $(nlines "$(bg_out "$w")") == 5 ]] || fail "watch --count 5 printed more than 5 lines
$(bg_show "$w")"
line "$w" 1 "wx created"
line "$w" 2 "wx set v1"
line "$w" 3 "wx clear"
line "$w" 4 "wx failed disk full"
line "$w" 5 "wx deleted"

check "watch on h3 of one name: a set at once followed by a clear on h1 is printed as both"
on 1 expect_exit 0 "$EVCTL" create sc
on 3 wait_until "\"\$EVCTL\" show sc >/dev/null 2>&1" || fail "h3 never saw sc created"
on 3 bg_start 240 "$EVCTL" watch sc --count 2
w=$BG_PID
c=$(bg_child "$w") && wait_until "in_futex $c" || fail "watch on h3 did not start watching"
on 1 expect_exit 0 "$EVCTL" set sc --value quick
on 1 expect_exit 0 "$EVCTL" clear sc
bg_expect "$w" 0
# Whether h3's watch looked between the two records or not, it prints the
# set, then the clear (the value only if it looked in between).
sed -n 1p "$(bg_out "$w")" | grep -E "^$ISO sc set( quick)?\$" >/dev/null || fail "line 1 is not 'TIME sc set'
$(bg_show "$w")"
line "$w" 2 "sc clear"

check "wait --all on h2 returns only once one event is set on h1 and the other on h3"
on 2 bg_start 240 "$EVCTL" wait --all all-a all-b --timeout 200s
w=$BG_PID
# It sleeps on both events and counts as a waiter of one of them.
on 2 wait_until "(( \$(waiters all-a) + \$(waiters all-b) == 1 ))" ||
        fail "wait --all all-a all-b on h2 does not show as a waiter"
c=$(bg_child "$w") || fail "no evctl under the waiter"
base=$(nvcsw "$c")
on 1 expect_exit 0 "$EVCTL" set all-a --value a
# The handshake that h2's waiter has seen all-a set and slept again: h2
# shows it set, and the waiter has woken since and sleeps on its futexes.
on 2 wait_until "[[ \$(show_field all-a state) == set ]]" || fail "h2 never saw all-a set"
wait_until "(( \$(nvcsw $c) > $base )) && in_futex $c" ||
        fail "h2's waiter did not wake at the set of all-a and sleep again"
alive "$w" || { bg_wait "$w"; fail "wait --all on h2 returned with only all-a set
$(bg_show "$w")"; }
on 3 expect_exit 0 "$EVCTL" set all-b --value b
bg_expect "$w" 0
[[ ! -s $(bg_out "$w") ]] || fail "wait --all printed something
$(bg_show "$w")"
check "wait --all on h2: one event set and at once cleared on h1, the other set on h3, releases it"
# As on one host, each event must have been set since the wait began; a
# set that another host cleared at once still counts (no lost wake-up).
on 2 bg_start 240 "$EVCTL" wait --all all-c all-d --timeout 200s
w=$BG_PID
on 2 wait_until "(( \$(waiters all-c) + \$(waiters all-d) == 1 ))" ||
        fail "wait --all all-c all-d on h2 does not show as a waiter"
on 1 expect_exit 0 "$EVCTL" set all-c
on 1 expect_exit 0 "$EVCTL" clear all-c
on 3 expect_exit 0 "$EVCTL" set all-d
bg_expect "$w" 0

check "wait --any on h1 and on h3 over three events, one of them set on h2"
W=()
for i in 1 3; do
        on "$i" bg_start 240 "$EVCTL" wait any-x any-y any-z --any --timeout 200s
        W+=("$BG_PID")
done
for i in 1 3; do
        on "$i" wait_until "(( \$(waiters any-x) + \$(waiters any-y) + \$(waiters any-z) == 1 ))" ||
                fail "wait --any on h$i does not show as a waiter"
done
on 2 expect_exit 0 "$EVCTL" set any-y --value why
# --any prints the name of the event that released it, then its value.
for p in "${W[@]}"; do bg_expect "$p" 0 $'any-y\nwhy'; done
check "wait --any returns at once, on every host, for an event set on another one"
for i in 1 2 3; do
        on "$i" expect_exit 0 "$EVCTL" wait none-1 any-y --any --timeout 0
        [[ $LAST_OUT == $'any-y\nwhy' ]] || fail "h$i: wait --any printed '$LAST_OUT'"
done

check "--progress on h3's waiter prints its lines while it waits for a set on h1, then returns"
on 3 bg_start 240 "$EVCTL" wait slow --progress 50ms --timeout 200s
w=$BG_PID
blocked 3 slow 1
# Three lines: it keeps printing across hosts, not once.
wait_until "(( \$(grep -c '^evctl: still waiting for slow (' '$(bg_err "$w")') >= 3 ))" ||
        fail "h3's waiter printed no three progress lines
$(bg_show "$w")"
! grep -Ev '^evctl: still waiting for slow \([0-9][0-9a-z.]*\)' "$(bg_err "$w")" | grep . >/dev/null ||
        fail "h3's waiter printed something else than progress lines
$(bg_show "$w")"
on 1 expect_exit 0 "$EVCTL" set slow --value "done"
bg_expect "$w" 0 done

check "--once: setters racing on three hosts, 3 rounds: exactly one wins each, every host sees its value"
for round in 1 2 3; do
        name=race-$round
        S=()
        declare -A VALUE=()
        for i in 1 2 3; do
                for k in 1 2; do
                        on "$i" bg_start 240 "$EVCTL" set "$name" --once --value "h$i-$k"
                        S+=("$BG_PID")
                        VALUE[$BG_PID]=h$i-$k
                done
        done
        won=()
        for p in "${S[@]}"; do
                bg_wait "$p"
                case $BG_RC in
                0) won+=("$p") ;;
                4) ;;
                *) fail "a racing set --once exited $BG_RC
$(bg_show "$p")" ;;
                esac
        done
        # Exactly one set reaches etcd (sets is 1 on every host, below).  Its
        # setter is told so, unless etcd took its call too slowly and the
        # retry found the event set (exit 4: docs/cluster.md, "A retried
        # write"): so one winner, or none on a machine that slow.
        ((${#won[@]} <= 1)) || fail "$name: ${#won[@]} of 6 racing setters won, want exactly 1"
        want=
        ((${#won[@]} == 0)) || want=${VALUE[${won[0]}]}
        for i in 1 2 3; do
                on "$i" wait_until "[[ \$(show_field $name state) == set ]]" ||
                        fail "h$i: $name is not set after the race"
                on "$i" expect_exit 0 "$EVCTL" wait "$name" --once --timeout 0
                [[ -n $want ]] || want=$LAST_OUT
                [[ $LAST_OUT == "$want" ]] || fail "h$i: $name's value is '$LAST_OUT', the winner set '$want'"
                [[ $want =~ ^h[123]-[12]$ ]] || fail "h$i: $name's value '$want' is no setter's"
                [[ $(on "$i" show_field "$name" sets) == 1 ]] ||
                        fail "h$i counts $(on "$i" show_field "$name" sets) sets of $name, want 1"
        done
done
