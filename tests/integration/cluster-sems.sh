#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-sems.sh - semaphores and locks of a cluster namespace (evd
# --etcd) across three daemons on separate runtime directories, over a
# 3-member etcd cluster on localhost ports: a stress of `sem run` over three
# hosts under a flock oracle (never more than --max inside, and --max
# inside at once for real), a lock handed over in FIFO order across hosts,
# try-acquire, a timed-out acquire that leaves no key behind, fencing
# tokens that grow across hosts, show and list, --initial, delete under a
# waiter, a holder SIGKILLed (another host acquires, told the lock was
# abandoned), a waiting contender SIGKILLed (the line moves on), a daemon
# SIGSTOPped past its lease under a waiter (it queues again with the new
# lease, behind a waiter that came meanwhile), a daemon
# SIGKILLed and started again within its lease (the hold lives on), a
# host's daemon SIGKILLed while a process there holds (another host
# acquires after the host lease), and, with an evctl that has them,
# fencing tokens across hosts and a daemon SIGSTOPped under `lock run` (its
# command killed before another host acquires).  Skipped when the etcd
# binaries are absent.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../cluster/hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/hosts.sh"
need_python
command -v flock >/dev/null || skip "flock(1) is needed"
cluster_up

# A short host lease, so that a dead host's holds come back within the
# test; every assertion on it leaves generous slack.
TTL=3
# leased I: wait until host hI holds a host lease again (after its daemon
# was stopped past the lease): an acquire there is taken.
leased() {
        on "$1" wait_until "\"\$EVCTL\" sem acquire probe-h$1 --max 1 --owner $$ --timeout 0 2>/dev/null" 60 ||
                fail "h$1 did not get a host lease again"
        on "$1" expect_exit 0 "$EVCTL" sem release probe-h$1 --owner $$
}
# held_on I NAME: a process of host hI (HOLDER, a sleep) holds the lock
# NAME and one on h1 (LW) waits for it, its key in etcd.
held_on() {
        bg_start 300 sleep 250
        HOLDER=$BG_PID
        on "$1" expect_exit 0 "$EVCTL" lock acquire "$2" --owner "$HOLDER"
        on 1 bg_start 300 "$EVCTL" lock acquire "$2" --owner $$ --timeout 120s
        LW=$BG_PID
        wait_until "(( \$(keys $2) == 2 ))" || fail "the waiter on h1 put no key"
}
# keys NAME: how many contender keys NAME has in etcd.
keys() {
        etcd3_ctl get --prefix "${PREFIX}sem/$1/h/" --keys-only | grep -c . || true
}
for i in 1 2 3; do host_start "$i"; done

# ---- a semaphore of 2 over three hosts ------------------------------------

check "2 holders on two hosts of a semaphore of 2 are inside at once (they meet); a third host is refused"
on 1 expect_exit 0 "$EVCTL" sem create ST --max 2
mkdir -p "$_SCRATCH/met"
meet=()
for i in 1 2; do
        # Inside: say so, wait until the other is inside too, then wait for
        # the test's go-ahead.
        on "$i" bg_start 300 "$EVCTL" sem run ST --timeout 120s -- sh -c '
                : >"$1/$$"
                n=0
                while [ "$(ls "$1" | wc -l)" -lt 2 ]; do
                        n=$((n + 1)); [ $n -gt 2400 ] && exit 7; sleep 0.05
                done
                "$2" wait go --timeout 120s >/dev/null' sh "$_SCRATCH/met" "$EVCTL"
        meet+=("$BG_PID")
done
wait_until "(( \$(ls '$_SCRATCH/met' | wc -l) == 2 ))" ||
        fail "the 2 holders were not inside at once"
for i in 1 2 3; do
        [[ $(on "$i" show_field ST state) == "0/2 free" ]] ||
                fail "h$i: show ST says '$(on "$i" show_field ST state)', want 0/2 free"
done
# each host records its own holders; show counts the others'
on 1 expect_exit 0 "$EVCTL" show ST
[[ $LAST_OUT == *$'\nholder: pid '* && $LAST_OUT == *$'\nheld on other hosts: 1 slot\n'* ]] ||
        fail "h1: show ST does not name its holder and count h2's: $LAST_OUT"
on 3 expect_exit 0 "$EVCTL" show ST
[[ $LAST_OUT != *'holder: pid'* && $LAST_OUT == *$'\nheld on other hosts: 2 slots\n'* ]] ||
        fail "h3: show ST does not count the 2 slots held on h1 and h2: $LAST_OUT"
on 3 expect_exit 0 "$EVCTL" show ST --json
[[ $LAST_OUT == *'"holders":[],"other_hosts":2'* ]] || fail "h3: show ST --json: $LAST_OUT"
on 3 expect_exit 0 "$EVCTL" list --json
[[ $LAST_OUT == *'"ST"'* ]] || fail "h3: list does not show ST: $LAST_OUT"
check "try-acquire (--timeout 0) on h3 is refused, and leaves no key behind"
on 3 expect_exit 1 "$EVCTL" sem acquire ST --owner $$ --timeout 0
(($(keys ST) == 2)) || fail "ST has $(keys ST) contender keys after a refused try, want 2"
check "a timed-out acquire leaves no key behind"
on 3 expect_exit 1 "$EVCTL" sem acquire ST --owner $$ --timeout 300ms
(($(keys ST) == 2)) || fail "ST has $(keys ST) contender keys after a timed-out acquire, want 2"
on 3 expect_exit 0 "$EVCTL" set go
for p in "${meet[@]}"; do bg_expect "$p" 0; done

check "12 'sem run' over 3 hosts on a semaphore of 2: never more than 2 inside (flock oracle)"
SD=$_SCRATCH/stress
mkdir -p "$SD"
echo 0 >"$SD/count"
echo 0 >"$SD/high"
: >"$SD/lock"
cat >"$SD/body.sh" <<'BODY'
#!/bin/sh
W=$1 ID=$2
n=$(flock "$W/lock" sh -c '
        n=$(( $(cat "$1/count") + 1 ))
        echo "$n" >"$1/count"
        [ "$n" -gt "$(cat "$1/high")" ] && echo "$n" >"$1/high"
        echo "$n"' sh "$W") || exit 90
[ "$n" -gt 2 ] && echo "worker $ID saw $n inside at once" >>"$W/violation"
echo "$ID" >>"$W/entered"
sleep 0.05
flock "$W/lock" sh -c 'echo $(( $(cat "$1/count") - 1 )) >"$1/count"' sh "$W" || exit 91
exit 0
BODY
chmod +x "$SD/body.sh"
S=()
for k in $(seq 1 12); do
        on $(((k % 3) + 1)) bg_start 300 "$EVCTL" sem run ST --timeout 200s -- "$SD/body.sh" "$SD" "$k"
        S+=("$BG_PID")
done
for p in "${S[@]}"; do bg_expect "$p" 0; done
[[ ! -e $SD/violation ]] || fail "more than 2 inside at once: $(cat "$SD/violation")"
(($(wc -l <"$SD/entered") == 12)) || fail "$(wc -l <"$SD/entered") of 12 commands ran"
[[ $(cat "$SD/count") == 0 ]] || fail "the oracle counts $(cat "$SD/count") inside at the end"
say "most inside at once: $(cat "$SD/high")"
for i in 1 2 3; do
        on "$i" wait_until "[[ \$(show_field ST state) == '2/2 free' ]]" ||
                fail "h$i: ST is '$(on "$i" show_field ST state)' at the end, want 2/2 free"
done
(($(keys ST) == 0)) || fail "ST has $(keys ST) contender keys at the end, want 0"

# ---- a lock across hosts ---------------------------------------------------

check "a lock handed over across hosts in FIFO order, each hand-over clean"
on 1 expect_exit 0 "$EVCTL" lock acquire LK --owner $$
: >"$_SCRATCH/order"
L=()
n=1
for who in A:2 B:3 C:1 D:2; do
        on "${who#*:}" bg_start 300 "$EVCTL" lock run LK --timeout 200s -- \
                sh -c 'echo "$1" >>"$2"' sh "${who%:*}" "$_SCRATCH/order"
        L+=("$BG_PID")
        n=$((n + 1))
        # the handshake: its key is in etcd before the next one asks
        wait_until "(( \$(keys LK) == $n ))" || fail "lock run ${who%:*} put no key"
done
on 2 expect_exit 0 "$EVCTL" show LK
[[ $LAST_OUT == *$'\nstate: held\n'* && $LAST_OUT == *$'\nheld on other hosts: 1 slot\n'* ]] ||
        fail "h2: show LK does not say it is held on another host: $LAST_OUT"
on 1 expect_exit 0 "$EVCTL" show LK
[[ $LAST_OUT != *'other hosts: 1'* ]] || fail "h1, the holder's host: show LK counts it as another host's: $LAST_OUT"
on 1 expect_exit 0 "$EVCTL" lock release LK --owner $$
for p in "${L[@]}"; do bg_expect "$p" 0; done
[[ $(tr '\n' ' ' <"$_SCRATCH/order") == "A B C D " ]] ||
        fail "the lock went in the order $(tr '\n' ' ' <"$_SCRATCH/order"), want A B C D"
for p in "${L[@]}"; do
        ! grep -q abandoned "$(bg_err "$p")" || fail "a clean hand-over was reported abandoned: $(cat "$(bg_err "$p")")"
done

check "release by a process that holds nothing is refused"
on 2 expect_exit 4 "$EVCTL" lock release LK --owner $$

check "--initial below --max: the slots it was made without are held by nobody, given back by any release"
on 2 expect_exit 0 "$EVCTL" sem create IN --max 3 --initial 1
for i in 1 3; do
        on "$i" wait_until "[[ \$(show_field IN state) == '1/3 free' ]]" ||
                fail "h$i: IN is '$(on "$i" show_field IN state)', want 1/3 free"
done
# show_json_of I NAME: host hI's show NAME --json.
show_json_of() {
        on "$1" expect_exit 0 "$EVCTL" show "$2" --json
        printf '%s\n' "$LAST_OUT"
}
for i in 1 2 3; do
        # the slots made without are nobody's: not another host's
        [[ $(show_json_of "$i" IN) == *'"free":1,"unowned":2,'*'"other_hosts":0'* ]] ||
                fail "h$i: show IN --json: $(show_json_of "$i" IN)"
        on "$i" expect_exit 0 "$EVCTL" show IN
        [[ $LAST_OUT == *$'\nheld by nobody: 2 slots '* && $LAST_OUT != *'other hosts'* ]] ||
                fail "h$i: show IN: $LAST_OUT"
done
on 3 expect_exit 0 "$EVCTL" sem release IN --owner $$
on 1 wait_until "[[ \$(show_field IN state) == '2/3 free' ]]" ||
        fail "h1: IN is '$(on 1 show_field IN state)' after a release, want 2/3 free"
on 1 expect_exit 0 "$EVCTL" sem acquire IN --owner $$ --timeout 0
on 2 expect_exit 0 "$EVCTL" sem acquire IN --owner $$ --timeout 0
on 3 expect_exit 1 "$EVCTL" sem acquire IN --owner $$ --timeout 0
on 3 wait_until "[[ \$(show_field IN state) == '0/3 free' ]]" ||
        fail "h3: IN is '$(on 3 show_field IN state)', want 0/3 free"
[[ $(show_json_of 3 IN) == *'"free":0,"unowned":1,'*'"other_hosts":2'* ]] ||
        fail "h3: show IN --json with a slot held on h1 and one on h2: $(show_json_of 3 IN)"

check "a semaphore deleted and made again with another max on h1: h2's mirror follows"
on 1 expect_exit 0 "$EVCTL" sem create RC --max 2
on 2 wait_until "[[ \$(show_field RC state) == '2/2 free' ]]" || fail "h2 does not mirror RC"
on 1 expect_exit 0 "$EVCTL" delete RC
on 1 expect_exit 0 "$EVCTL" sem create RC --max 3
on 2 wait_until "[[ \$(show_field RC state) == '3/3 free' ]]" ||
        fail "h2 shows RC as '$(on 2 show_field RC state)' after it was made again with --max 3"
on 2 expect_exit 0 "$EVCTL" sem acquire RC --max 3 --owner $$ --timeout 0

check "unbounded semaphores are refused in a cluster namespace (exit 5, why)"
on 1 expect_error 5 "not supported in a cluster namespace" "$EVCTL" sem create UB --unbounded

# ---- deaths ----------------------------------------------------------------

check "a holder SIGKILLed on h1: a waiter on h2 gets the lock, told it was abandoned"
on 1 bg_start 300 "$EVCTL" lock run KL -- sleep 250
KH=$BG_PID
on 1 wait_until "[[ -n \$(show_field KL holder) ]]" || fail "lock run on h1 did not get KL"
on 2 bg_start 300 "$EVCTL" lock acquire KL --owner $$ --timeout 120s
KW=$BG_PID
wait_until "(( \$(keys KL) == 2 ))" || fail "the waiter on h2 put no key"
t0=$(now_ms)
kill -KILL -- -"$KH" 2>/dev/null || kill -KILL "$KH"
bg_expect "$KW" 0
say "holder SIGKILLed on h1 -> h2 acquired in $(($(now_ms) - t0)) ms"
grep -q abandoned "$(bg_err "$KW")" || fail "the new owner was not told the lock was abandoned"

check "a waiting contender SIGKILLed on h2 does not block the line (h3 gets the lock next)"
on 1 expect_exit 0 "$EVCTL" sem create KS --max 1
on 1 expect_exit 0 "$EVCTL" sem acquire KS --owner $$
on 2 bg_start 300 "$EVCTL" sem acquire KS --owner $$ --timeout 200s
KW2=$BG_PID
wait_until "(( \$(keys KS) == 2 ))" || fail "the waiter on h2 put no key"
on 3 bg_start 300 "$EVCTL" sem acquire KS --owner $$ --timeout 200s
KW3=$BG_PID
wait_until "(( \$(keys KS) == 3 ))" || fail "the waiter on h3 put no key"
kill -KILL -- -"$KW2"
on 1 expect_exit 0 "$EVCTL" sem release KS --owner $$
bg_expect "$KW3" 0
wait_until "(( \$(keys KS) == 1 ))" || fail "KS has $(keys KS) keys, want 1 (the dead waiter's is left)"

check "a waiter on h3 of a semaphore deleted on h1 ends (exit 4, no such object)"
on 1 expect_exit 0 "$EVCTL" sem acquire ST --owner $$
on 2 expect_exit 0 "$EVCTL" sem acquire ST --owner $$
on 3 bg_start 300 "$EVCTL" sem acquire ST --owner $$ --timeout 200s
DW=$BG_PID
wait_until "(( \$(keys ST) == 3 ))" || fail "the waiter on h3 put no key"
on 1 expect_exit 0 "$EVCTL" delete ST
bg_wait "$DW"
((BG_RC != 0 && BG_RC != 124)) || fail "the waiter of a deleted semaphore exited $BG_RC"
for i in 2 3; do
        on "$i" wait_until "! \"\$EVCTL\" show ST >/dev/null 2>&1" ||
                fail "h$i still shows ST after its delete on h1"
done
(($(keys ST) == 0)) || fail "ST has $(keys ST) keys left after its delete"

# sem run / lock run with fencing tokens and the lease kill are evctl's
# (EVD_FENCE, exit 123): these checks run once evctl has them.
if "$EVCTL" lock run --help 2>&1 | grep EVD_FENCE >/dev/null; then
        check "fencing tokens (EVD_FENCE) grow across hosts, and are the contender keys' create revisions"
        : >"$_SCRATCH/fences"
        for i in 1 2 3 1 3 2; do
                on "$i" expect_exit 0 "$EVCTL" lock run FT -- sh -c 'echo "$EVD_FENCE" >>"$1"' sh \
                        "$_SCRATCH/fences"
        done
        prev=0
        while read -r f; do
                [[ $f =~ ^[0-9]+$ ]] && ((f > prev)) || fail "fences do not grow: $(tr '\n' ' ' <"$_SCRATCH/fences")"
                prev=$f
        done <"$_SCRATCH/fences"
        on 2 bg_start 300 "$EVCTL" lock run FT -- sh -c 'echo "$EVD_FENCE" >"$1"; exec sleep 250' sh \
                "$_SCRATCH/fence1"
        FR=$BG_PID
        wait_until "[[ -s $_SCRATCH/fence1 ]]" || fail "lock run on h2 did not start its command"
        rev=$(etcd3_ctl get --prefix "${PREFIX}sem/FT/h/" -w json | python3 -c '
import json, sys
print(json.load(sys.stdin)["kvs"][0]["create_revision"])')
        [[ $(cat "$_SCRATCH/fence1") == "$rev" ]] ||
                fail "EVD_FENCE is $(cat "$_SCRATCH/fence1"), the hold key's create revision $rev"
        kill -TERM -- -"$FR"
        bg_wait "$FR"

        check "h2's daemon SIGSTOPped while lock run there holds: its command is dead and lock run ends with 123 before h1 gets the lock"
        on 2 bg_start 300 "$EVCTL" lock run SL -- sh -c 'echo $$ >"$1"; exec sleep 250' sh \
                "$_SCRATCH/slpid"
        SR=$BG_PID
        wait_until "[[ -s $_SCRATCH/slpid ]]" || fail "lock run on h2 did not start its command"
        on 1 bg_start 300 "$EVCTL" lock acquire SL --owner $$ --timeout 120s
        SW=$BG_PID
        wait_until "(( \$(keys SL) == 2 ))" || fail "the waiter on h1 put no key"
        t0=$(now_ms)
        kill -STOP "${HPID[2]}"
        bg_wait "$SW"
        dt=$(($(now_ms) - t0))
        cmd_alive=0
        kill -0 "$(cat "$_SCRATCH/slpid")" 2>/dev/null && cmd_alive=1
        ((BG_RC == 0)) || fail "the waiter on h1 exited $BG_RC: $(cat "$(bg_err "$SW")")"
        say "h2's daemon SIGSTOPped -> h1 acquired in $dt ms (lease TTL ${TTL} s)"
        ((cmd_alive == 0)) || fail "h1 got the lock while lock run's command on h2 still ran"
        grep -q "abandoned" "$(bg_err "$SW")" ||
                fail "h1 was not warned that the lock was abandoned: $(cat "$(bg_err "$SW")")"
        # lock run ends while its daemon is still stopped: it does not give
        # the hold back through it (which would wait out a request deadline
        # and say "cannot release")
        bg_expect "$SR" 123
        kill -CONT "${HPID[2]}"
        grep -q "lease" "$(bg_err "$SR")" || fail "lock run did not say why it killed: $(cat "$(bg_err "$SR")")"
        ! grep -q "cannot release" "$(bg_err "$SR")" ||
                fail "lock run tried to give the hold back through its stopped daemon: $(cat "$(bg_err "$SR")")"
        on 1 expect_exit 0 "$EVCTL" lock release SL --owner $$
        leased 2
else
        say "skipped: fencing tokens and the lease kill of lock run (this evctl has no EVD_FENCE)"
fi

check "h2's daemon SIGSTOPped past its lease while a waiter there waits: its key goes with the lease; with a new lease the waiter puts it again, behind one that came meanwhile, and gets the lock in its turn"
on 1 expect_exit 0 "$EVCTL" lock acquire EL --owner $$
on 2 bg_start 300 "$EVCTL" lock acquire EL --owner $$ --timeout 200s
EW=$BG_PID
wait_until "(( \$(keys EL) == 2 ))" || fail "the waiter on h2 put no key"
kill -STOP "${HPID[2]}"
wait_until "(( \$(keys EL) == 1 ))" 60 || { kill -CONT "${HPID[2]}"; fail "h2's key outlived its lease"; }
on 3 bg_start 300 "$EVCTL" lock acquire EL --owner $$ --timeout 200s
E3=$BG_PID
wait_until "(( \$(keys EL) == 2 ))" || { kill -CONT "${HPID[2]}"; fail "the waiter on h3 put no key"; }
kill -CONT "${HPID[2]}"
wait_until "(( \$(keys EL) == 3 ))" 60 || fail "the waiter on h2 did not put its key again once h2 had a new lease: $(cat "$(bg_err "$EW")")"
alive "$EW" || fail "the waiter on h2 ended: $(bg_show "$EW")"
on 1 expect_exit 0 "$EVCTL" lock release EL --owner $$
bg_expect "$E3" 0
# h3's waiter came before h2's key was put again: h2's still waits
(( $(keys EL) == 2 )) && alive "$EW" || fail "the waiter on h2 did not stay behind h3's: $(bg_show "$EW")"
on 3 expect_exit 0 "$EVCTL" lock release EL --owner $$
bg_expect "$EW" 0
! grep -q "lost its lease" "$(bg_err "$EW")" || fail "the waiter on h2 was told: $(cat "$(bg_err "$EW")")"
on 2 expect_exit 0 "$EVCTL" lock release EL --owner $$
leased 2

check "an acquire asked on h2 as its daemon comes back from a SIGSTOP past its lease (its lease gone, or not known gone yet) waits for the new lease and gets the lock in its turn"
on 1 expect_exit 0 "$EVCTL" lock acquire NL --owner $$
on 2 expect_exit 0 "$EVCTL" lock acquire NLP --owner $$
kill -STOP "${HPID[2]}"
# the lease is gone once h2's key of NLP is
wait_until "(( \$(keys NLP) == 0 ))" 60 || { kill -CONT "${HPID[2]}"; fail "h2's key of NLP outlived its lease"; }
kill -CONT "${HPID[2]}"
on 2 bg_start 300 "$EVCTL" lock acquire NL --owner $$ --timeout 200s
NW=$BG_PID
wait_until "(( \$(keys NL) == 2 ))" 60 || fail "the acquire on h2 put no key once h2 had a new lease: $(bg_show "$NW")"
on 1 expect_exit 0 "$EVCTL" lock release NL --owner $$
bg_expect "$NW" 0
on 2 expect_exit 0 "$EVCTL" lock release NL --owner $$
on 2 expect_exit 0 "$EVCTL" lock acquire EL --owner $$ --timeout 5s

check "h4's daemon SIGKILLed and started again within its lease (TTL 30 s) while a process there holds: the hold lives on; its release there hands the lock to h1, cleanly"
TTL=30 host_start 4
held_on 4 RL
host_kill 4
TTL=30 host_start 4
on 4 wait_until "[[ \$(show_field RL holder) == *'pid $HOLDER'* ]]" ||
        fail "h4's restarted daemon does not show the hold: $(on 4 show_field RL holder)"
on 3 expect_exit 1 "$EVCTL" lock acquire RL --owner $$ --timeout 0
alive "$LW" || fail "h1 got the lock while h4's process still held it: $(bg_show "$LW")"
on 4 expect_exit 0 "$EVCTL" lock release RL --owner "$HOLDER"
bg_expect "$LW" 0
! grep -q abandoned "$(bg_err "$LW")" || fail "a clean release after the restart was reported abandoned"
kill -KILL -- -"$HOLDER" 2>/dev/null || true

check "h3's daemon SIGKILLed while a process there holds: h1 gets the lock after the host lease (TTL ${TTL} s)"
held_on 3 DL
t0=$(now_ms)
kill -KILL "${HPID[3]}"
bg_expect "$LW" 0
dt=$(($(now_ms) - t0))
say "h3's daemon SIGKILLed -> h1 acquired in $dt ms (lease TTL ${TTL} s)"
# The lease was kept alive at most TTL/3 before the kill: it ends no
# sooner than 2/3 TTL after it.
((dt >= TTL * 1000 * 2 / 3 - 200)) || fail "h1 acquired $dt ms after the kill, before the lease could end"
kill -KILL -- -"$HOLDER" 2>/dev/null || true
