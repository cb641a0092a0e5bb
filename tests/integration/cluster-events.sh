#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-events.sh - events of a cluster namespace (evd --etcd) across
# three daemons on separate runtime directories, over a 3-member etcd
# cluster on localhost ports: fan-out with values, set at once followed by
# clear, fail, --once, --auto (one release per set; a fail releases every
# waiter), wait --any, list/show/delete, an etcd member killed
# under the watches, a member hung, quorum lost (writes exit 5, waiters keep
# waiting), a compaction while a host's daemon is stopped, a host's daemon
# SIGKILLed and restarted, and a daemon without --etcd on a cluster
# namespace's directory.  Skipped when the etcd binaries are absent.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../cluster/hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/hosts.sh"
need_python
cluster_up

# released_outs: each waiter of W that has ended exited 0; got is what they
# printed, sorted, each followed by a space.
released_outs() {
        local p outs=()
        for p in "${W[@]}"; do
                alive "$p" && continue
                bg_expect "$p" 0
                outs+=("$(cat "$(bg_out "$p")")")
        done
        got=$(printf '%s\n' "${outs[@]}" | sort | tr '\n' ' ')
}
# watched_member I: j is the etcd member host hI's watch is on (its log
# names the port).
watched_member() {
        local port k
        port=$(grep -o 'cluster: watching .* on http://127.0.0.1:[0-9]*' "${H[$1]}/evd.log" | tail -n 1 | sed 's/.*://')
        j=0
        for k in 1 2 3; do [[ ${ETCD3_CPORT[$k]} == "$port" ]] && j=$k; done
        ((j)) || fail "cannot tell which member h$1 watches (log: $(grep watching "${H[$1]}/evd.log"))"
}
for i in 1 2 3; do host_start "$i"; done
[[ -f ${H[1]}/evd.cluster ]] || fail "the daemon did not mark its runtime directory as a cluster namespace"

check "fan-out: 4 waiters on each of h2 and h3, one set with a value on h1"
W=()
waiters_on 2 redis-ready 4
waiters_on 3 redis-ready 4
blocked 2 redis-ready 4
blocked 3 redis-ready 4
on 1 expect_exit 0 "$EVCTL" set redis-ready --value 127.0.0.1:6379
for p in "${W[@]}"; do bg_expect "$p" 0 127.0.0.1:6379; done
check "16 sets with 16 values at once on h1: every host shows each event with its own value"
# Their requests reach h1's daemon together; each is answered by a worker
# thread while the daemon reads the next ones.
P=()
for k in $(seq 1 16); do
        on 1 bg_start 240 "$EVCTL" set "many-$k" --value "value-of-$k"
        P+=("$BG_PID")
done
for p in "${P[@]}"; do bg_expect "$p" 0; done
for i in 1 2 3; do
        for k in $(seq 1 16); do
                on "$i" wait_until "[[ \$(show_field many-$k value) == value-of-$k ]]" ||
                        fail "h$i: many-$k has the value '$(on "$i" show_field "many-$k" value)', not value-of-$k"
        done
done

check "a wait that starts after the set returns at once, on every host"
for i in 1 2 3; do
        on "$i" expect_exit 0 "$EVCTL" wait redis-ready --timeout 0
        [[ $LAST_OUT == 127.0.0.1:6379 ]] || fail "h$i: wait printed '$LAST_OUT'"
done

check "no lost wake-up across hosts: set then clear at once on h1 releases every waiter on h2 and h3"
W=()
waiters_on 2 sc 3
waiters_on 3 sc 3
blocked 2 sc 3
blocked 3 sc 3
on 1 expect_exit 0 "$EVCTL" set sc --value gen-1
on 1 expect_exit 0 "$EVCTL" clear sc
for p in "${W[@]}"; do bg_expect "$p" 0 gen-1; done
for i in 2 3; do
        [[ $(on "$i" show_field sc state) == clear ]] || fail "h$i: sc is not clear after the clear"
done

check "fail on h2 reaches a waiter on h3 (exit 3 and the message)"
W=()
waiters_on 3 job 1
blocked 3 job 1
on 2 expect_exit 0 "$EVCTL" fail job "disk full"
bg_expect "${W[0]}" 3
grep -q "disk full" "$(bg_err "${W[0]}")" || fail "the waiter did not print the failure: $(cat "$(bg_err "${W[0]}")")"

check "--once across hosts: only the first set wins"
on 1 expect_exit 0 "$EVCTL" set boot --once --value first
on 2 expect_exit 4 "$EVCTL" set boot --once --value second
on 3 expect_exit 0 "$EVCTL" wait boot --once --timeout 0
[[ $LAST_OUT == first ]] || fail "h3 sees '$LAST_OUT', want first"
check "a kind mismatch across hosts is refused"
on 2 expect_exit 4 "$EVCTL" set boot --value x

check "auto event: 7 waiters over 3 hosts, 6 sets one after another: exactly one release per set"
W=()
waiters_on 1 au 2 --auto
waiters_on 2 au 2 --auto
waiters_on 3 au 3 --auto
blocked 1 au 2
blocked 2 au 2
blocked 3 au 3
for k in 1 2 3 4 5 6; do
        on "$(((k % 3) + 1))" expect_exit 0 "$EVCTL" set au --auto --value "s$k"
        # the handshake: the next set only once this one released a waiter
        wait_until "(( \$(n_ended \"\${W[@]}\") >= $k ))" ||
                fail "set $k of au released no waiter"
done
n=$(n_ended "${W[@]}")
((n == 6)) || fail "6 sets of an auto event released $n waiters"
released_outs
[[ $got == "s1 s2 s3 s4 s5 s6 " ]] || fail "the released waiters printed '$got', want each of s1..s6 once"
for i in 1 2 3; do
        [[ $(on "$i" show_field au state) == clear ]] || fail "h$i: au is not clear after its sets were consumed"
done
check "auto event: a fail on h1 releases the waiter left over, whichever host it waits on (exit 3)"
last=
for p in "${W[@]}"; do
        alive "$p" && last=$p
done
[[ -n $last ]] || fail "no waiter on au is left"
on 1 expect_exit 0 "$EVCTL" fail au --auto "gone"
bg_expect "$last" 3
grep -q "gone" "$(bg_err "$last")" || fail "the auto waiter did not print the failure: $(cat "$(bg_err "$last")")"

check "wait --any on h3 is released by a set of one of its events on h2"
on 3 bg_start 240 "$EVCTL" wait any-a any-b --any --timeout 200s
W=("$BG_PID")
blocked 3 any-b 1
on 2 expect_exit 0 "$EVCTL" set any-b --value b
bg_expect "${W[0]}" 0

check "wait --any over auto events across hosts: each set releases exactly one waiter"
on 1 expect_exit 0 "$EVCTL" create ax1 --auto
on 1 expect_exit 0 "$EVCTL" create ax2 --auto
W=()
for i in 2 2 3 3; do
        on "$i" bg_start 240 "$EVCTL" wait ax1 ax2 --any --timeout 200s
        W+=("$BG_PID")
done
blocked 2 ax2 2
blocked 3 ax2 2
k=0
for ev in ax1 ax2 ax2; do
        k=$((k + 1))
        on 1 expect_exit 0 "$EVCTL" set "$ev" --auto --value "$ev-$k"
        wait_until "(( \$(n_ended \"\${W[@]}\") >= $k ))" || fail "set $k ($ev) released no waiter"
done
n=$(n_ended "${W[@]}")
((n == 3)) || fail "3 sets of auto events released $n waiters of wait --any"
released_outs
[[ $got == "ax1 ax1-1 ax2 ax2 ax2-2 ax2-3 " ]] || fail "the released waiters printed '$got'"
on 1 expect_exit 0 "$EVCTL" fail ax1 --auto "done"
for p in "${W[@]}"; do
        alive "$p" && bg_expect "$p" 3
done

check "list and show on h3 read the mirror of what h1 and h2 did"
on 3 expect_exit 0 "$EVCTL" list --no-legend
[[ $LAST_OUT == *boot*once*set*first* ]] || fail "h3's list does not show boot set by h1: $LAST_OUT"
[[ $(on 3 show_field job state) == failed ]] || fail "h3 does not show job failed"
[[ $(on 3 show_field redis-ready sets) == 1 ]] || fail "h3 counts $(on 3 show_field redis-ready sets) sets of redis-ready, want 1"

check "delete on h1 removes the event on every host"
on 1 expect_exit 0 "$EVCTL" delete any-a
for i in 2 3; do
        on "$i" wait_until "! timeout $T_CALL \"\$EVCTL\" show any-a >/dev/null 2>&1" ||
                fail "h$i still has any-a after h1 deleted it"
done

check "types the cluster mode does not have yet are refused, not made local"
on 1 expect_exit 5 "$EVCTL" sem create u --unbounded

check "an etcd member killed under the watches: waiters on h2 and h3 are still released"
W=()
waiters_on 2 mk 2
waiters_on 3 mk 2
blocked 2 mk 2
blocked 3 mk 2
etcd3_kill 1
on 1 expect_exit 0 "$EVCTL" set mk --value after-kill
for p in "${W[@]}"; do bg_expect "$p" 0 after-kill; done
etcd3_restart 1

check "the member h3 watches hangs (SIGSTOP): h3's waiter is still released"
W=()
waiters_on 3 hung 1
blocked 3 hung 1
watched_member 3
etcd3_pause "$j"
on 1 expect_exit 0 "$EVCTL" set hung --value through
bg_expect "${W[0]}" 0 through
grep -q "member not answering" "${H[3]}/evd.log" ||
        fail "h3's watch never noticed its member hung: the test did not test the health check"
etcd3_resume "$j"

check "quorum lost: a write exits 5 with a clear message; the waiter keeps waiting"
W=()
waiters_on 2 q 1
blocked 2 q 1
# h1's mirror has q (so that its set is a write, not a creation)
on 1 wait_until "[[ \$(show_field q state) == clear ]]" || fail "h1 does not mirror q"
etcd3_kill 2
etcd3_kill 3
on 1 expect_exit 5 "$EVCTL" set q --value lost
[[ $LAST_ERR == *"etcd cluster did not take the write"* ]] || fail "set without quorum said: $LAST_ERR"
on 1 expect_exit 5 "$EVCTL" set q-new --value lost
[[ $LAST_ERR == *"etcd cluster did not take the creation"* ]] || fail "a creation without quorum said: $LAST_ERR"
alive "${W[0]}" || fail "the waiter on h2 ended while etcd had no quorum"
[[ $(on 2 show_field q state) == clear ]] || fail "h2 shows q set after a write without quorum"
etcd3_restart 2
etcd3_restart 3
# A write that timed out is not known to have failed: etcd may still
# commit it from its log once quorum is back (docs/cluster.md).  So the
# waiter returns "lost" or "back", whichever etcd committed first.
on 1 expect_exit 0 "$EVCTL" set q --value back
bg_expect "${W[0]}" 0
grep -qxE 'lost|back' "$(bg_out "${W[0]}")" || fail "the waiter on q printed $(cat "$(bg_out "${W[0]}")")"

check "compaction while h2's daemon is stopped: its waiter is released, with the newest value"
W=()
waiters_on 2 cp 1
blocked 2 cp 1
# The member h2 watches is killed while h2's daemon is stopped and before
# the writes, so that none of them reaches h2's socket: h2 must resume from
# an old revision, find it compacted and re-read the prefix.
watched_member 2
live=()
for i in 1 2 3; do ((i == j)) || live+=("127.0.0.1:${ETCD3_CPORT[$i]}"); done
live=$(IFS=,; echo "${live[*]}")
kill -STOP "${HPID[2]}"
etcd3_kill "$j"
for v in 1 2 3 4 5; do
        on 1 expect_exit 0 "$EVCTL" set cp --value "v$v"
        on 1 expect_exit 0 "$EVCTL" clear cp
done
rev=$(ETCDCTL_API=3 etcdctl --endpoints "$live" endpoint status -w json |
        python3 -c 'import json,sys; print(max(int(s["Status"]["header"]["revision"]) for s in json.load(sys.stdin)))')
ETCDCTL_API=3 etcdctl --endpoints "$live" compact "$rev" >/dev/null || fail "etcdctl compact $rev failed"
kill -CONT "${HPID[2]}"
bg_expect "${W[0]}" 0 v5
grep -q "compacted" "${H[2]}/evd.log" || fail "h2 never saw its watch compacted: the test did not test the re-read"
etcd3_restart "$j"

check "h2's daemon SIGKILLed while its waiter blocks; a set on h1 meanwhile; the restarted daemon releases it"
W=()
waiters_on 2 rs 1
blocked 2 rs 1
host_kill 2
on 1 expect_exit 0 "$EVCTL" set rs --value while-down
on 1 expect_exit 0 "$EVCTL" clear rs
alive "${W[0]}" || fail "h2's waiter ended while its daemon was down"
host_start 2
bg_expect "${W[0]}" 0 while-down

check "the restarted daemon of h2 goes on with its host lease; one lease per host in etcd"
on 2 wait_until "grep -q 'kept from before a restart' '${H[2]}/evd.log'" ||
        fail "h2's restarted daemon did not keep its lease: $(grep 'host lease' "${H[2]}/evd.log")"
ids=$(grep -oE 'host lease [0-9a-f]+,' "${H[2]}/evd.log" | tail -n 2 | sort -u | wc -l)
((ids == 1)) || fail "h2's restarted daemon took a new lease: $(grep 'host lease' "${H[2]}/evd.log")"
n=$(etcd3_ctl lease list | sed -n 's/^found \([0-9]*\) leases$/\1/p')
((n == 3)) || fail "etcd has $n leases for 3 hosts: $(etcd3_ctl lease list)"

check "--lease-ttl: whole seconds from 2 s, and only with --etcd"
run "$EVD" --runtime-dir "${H[1]}" --etcd "$ETCD3_URLS" --lease-ttl 1s
((LAST_RC == 2)) && [[ $LAST_ERR == *"--lease-ttl takes whole seconds"* ]] ||
        fail "--lease-ttl 1s: exit $LAST_RC, $LAST_ERR"
run "$EVD" --runtime-dir "${H[1]}" --etcd "$ETCD3_URLS" --lease-ttl 2.5s
((LAST_RC == 2)) || fail "--lease-ttl 2.5s: exit $LAST_RC"
run "$EVD" --runtime-dir "${H[1]}" --lease-ttl 5s
((LAST_RC == 2)) && [[ $LAST_ERR == *"go with --etcd"* ]] || fail "--lease-ttl without --etcd: exit $LAST_RC, $LAST_ERR"

check "a daemon without --etcd refuses a cluster namespace's directory, also when autostarted"
host_kill 3
[[ -f ${H[3]}/evd.cluster ]] || fail "h3's mark went with its SIGKILLed daemon"
run "$EVD" --runtime-dir "${H[3]}"
((LAST_RC != 0)) || fail "evd without --etcd served the cluster namespace h3"
[[ $LAST_ERR == *"start evd with --etcd"* ]] || fail "evd without --etcd said: $LAST_ERR"
EVD_RUNTIME_DIR=${H[3]} expect_exit 5 "$EVCTL" set redis-ready --value local
[[ -f ${H[3]}/evd.cluster ]] || fail "the autostarted daemon removed h3's mark"

check "an --ephemeral cluster daemon's clean stop removes the mark"
kill -TERM "${HPID[1]}"
wait "${HPID[1]}" 2>/dev/null || true
[[ ! -e ${H[1]}/evd.cluster ]] || fail "h1's mark outlived its --ephemeral daemon"
