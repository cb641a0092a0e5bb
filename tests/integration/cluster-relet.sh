#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-relet.sh - a host's lease revoked in etcd (which its daemon
# learns only at its next keepalive) under acquires there:
# - an acquire that the daemon refuses for its lease waits for the next
#   lease, even when that lease is already in the segment's header by the
#   time the client looks (the client held by a gdb breakpoint at
#   cluster_wait_lease until the host has it): it then takes the free
#   semaphore, instead of waiting for yet another lease until its timeout;
# - a lock's waiter whose hold was recorded while it was SIGSTOPped, the
#   lease then revoked (another host takes the lock) and a new lease had
#   while the daemon's watch has not brought the key's deletion yet (the
#   watch thread held by a gdb breakpoint, non-stop): the waiter does not
#   take the stale record for a hold (lock run would run its command while
#   the other host holds); it queues again with the new lease.
# Skipped without the etcd binaries or gdb.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../cluster/hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/hosts.sh"
need_python
command -v gdb >/dev/null || skip "gdb is needed"
cluster_up
# A long lease: the daemon keeps it alive every TTL/3 (10 s), so it learns
# of a revoke that long after; every wait here is a handshake.
TTL=30
for i in 1 2 3; do host_start "$i"; done

# lease_of I: the etcd lease of host hI, as the lease of a key it puts.
lease_of() {
        on "$1" "$EVCTL" lock acquire "probe-h$1" --owner $$ --timeout 100s >/dev/null ||
                fail "h$1 could not take its probe lock"
        etcd3_ctl get --prefix "${PREFIX}sem/probe-h$1/h/" -w json | python3 -c '
import json, sys
print("%x" % json.load(sys.stdin)["kvs"][0]["lease"])'
        on "$1" "$EVCTL" lock release "probe-h$1" --owner $$ >/dev/null
}
# ttl_left ID: the seconds etcd gives lease ID.
ttl_left() {
        etcd3_ctl lease timetolive "$1" | sed -n 's/.*remaining(\([0-9-]*\)s).*/\1/p'
}

on 1 expect_exit 0 "$EVCTL" sem create FREE --max 1
on 2 wait_until "\"\$EVCTL\" show FREE >/dev/null 2>&1" || fail "h2 does not mirror FREE"

check "h2's lease revoked in etcd just after a keepalive: an acquire there is refused (ENOLINK), and held before it looks at the lease"
gone=$(lease_of 2)
wait_until "(( \$(ttl_left $gone) >= TTL - 1 ))" || fail "h2's lease $gone was not renewed"
etcd3_ctl lease revoke "$gone" >/dev/null
# a try is told at once, in one line about the lease (the daemon learns of
# the revoke at its next keepalive: till then etcd refuses its key's lease)
on 2 expect_exit 5 "$EVCTL" sem acquire FREE --owner $$ --timeout 0
[[ $LAST_ERR == *lease* && $LAST_ERR != *HTTP* && $LAST_ERR != *$'\n'* ]] ||
        fail "h2: a try without a lease says: $LAST_ERR"
G=$_SCRATCH/gdb
mkdir -p "$G"
# (LeakSanitizer cannot run under ptrace: an ASan build's evctl leaves its
# leak check out here)
on 2 bg_start 300 env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" gdb -q -batch -nx -ex 'set breakpoint pending on' -ex 'set pagination off' \
        -ex 'break cluster_wait_lease' -ex run \
        -ex "shell touch $G/hit; while [ ! -e $G/go ]; do sleep 0.1; done" \
        -ex delete -ex continue \
        --args "$EVCTL" sem acquire FREE --owner $$ --timeout 100s
GP=$BG_PID
wait_until "[[ -e $G/hit ]]" || fail "the acquire on h2 did not come to wait for a lease: $(bg_show "$GP")"

check "h2 gets its next lease, then the acquire goes on: it takes the free semaphore"
wait_until "[[ \$(lease_of 2) != $gone ]]" 120 || fail "h2 got no new lease"
touch "$G/go"
bg_wait "$GP"
grep -q "exited normally" "$(bg_out "$GP")" ||
        fail "the acquire did not take FREE with h2's new lease: $(bg_show "$GP")"
[[ $(on 2 show_field FREE state) == "0/1 free" ]] ||
        fail "h2: FREE is '$(on 2 show_field FREE state)', want 0/1 free"
on 2 expect_exit 0 "$EVCTL" sem release FREE --owner $$

# keys NAME: the contender keys of NAME in etcd, one a line.
keys() {
        etcd3_ctl get --prefix "${PREFIX}sem/$1/h/" --keys-only | grep . || true
}

check "a lock's waiter on h2 recorded as holder while SIGSTOPped; h2's lease revoked (h3's waiter takes the lock), h2 relet while its watch is held: the waiter queues again rather than take its stale record"
on 1 expect_exit 0 "$EVCTL" lock acquire X --owner $$
on 2 bg_start 300 "$EVCTL" lock run X --timeout 250s -- sh -c 'echo inside >"$1"; exec sleep 200' sh \
        "$_SCRATCH/inside"
W=$BG_PID
wait_until "(( \$(keys X | grep -c .) == 2 ))" || fail "lock run on h2 put no key"
bg_start 300 sleep 250
VO=$(bg_child "$BG_PID")
on 3 bg_start 300 "$EVCTL" lock acquire X --owner "$VO" --timeout 250s
V=$BG_PID
wait_until "(( \$(keys X | grep -c .) == 3 ))" || fail "the waiter on h3 put no key"
WE=$(bg_child "$W")
kill -STOP "$WE"
on 1 expect_exit 0 "$EVCTL" lock release X --owner $$
on 2 wait_until "[[ -n \$(show_field X holder) ]]" || fail "h2 did not record the hold of lock run"
gone=$(lease_of 2)
wait_until "(( \$(ttl_left $gone) >= TTL - 1 ))" || fail "h2's lease $gone was not renewed"
# gdb reads its commands from a FIFO, so that its event loop runs between
# them (the threads its attach stopped are resumed); non-stop: the
# breakpoint stops only the watch thread.
mkfifo "$G/in"
bg_start 300 sh -c 'exec gdb -q -nx <"$1"' sh "$G/in"
GD=$BG_PID
exec 3>"$G/in"
printf 'set non-stop on\nset pagination off\nset confirm off\nattach %s\ninfo threads\necho ATTACHED\\n\n' \
        "${HPID[2]}" >&3
wait_until "grep -q ATTACHED '$(bg_out "$GD")'" || fail "gdb did not attach: $(bg_show "$GD")"
# (again until every thread runs: one the attach stopped may not have been
# reported yet at the first continue)
wait_until "printf 'continue -a &\\n' >&3; sleep 0.2
        [[ \$(cut -d' ' -f3 /proc/${HPID[2]}/task/*/stat | sort -u) != *t* ]]" ||
        fail "h2's daemon stays stopped under gdb: $(bg_show "$GD")"
printf 'break on_watch_line\necho ARMED\\n\n' >&3
wait_until "grep -q ARMED '$(bg_out "$GD")'" || fail "gdb did not set the breakpoint"
leases=$(grep -c 'cluster: host lease' "${H[2]}/evd.log")
etcd3_ctl lease revoke "$gone" >/dev/null
bg_expect "$V" 0
# h2's daemon learns at its next keepalive; its new lease is in the header
# once the lease deadline there is a whole TTL ahead (the old one's was
# less, by the time since the revoke).
wait_until "(( \$(grep -c 'cluster: host lease' '${H[2]}/evd.log') > leases ))" 60 || fail "h2 got no new lease"
wait_until "on 2 \"\$EVCTL\" show X --json | python3 -c 'import json, sys
sys.exit(json.load(sys.stdin)[\"cluster\"][\"lease_left_usec\"] <= $((TTL - 3)) * 1000000)'" ||
        fail "h2's header does not show its new lease"
[[ -n $(on 2 show_field X holder) ]] || fail "h2's watch was not held: the stale record is gone"
kill -CONT "$WE"
wait_until "[[ \$(keys X) == *'/h/h2/'* ]]" || fail "lock run on h2 did not queue again: $(bg_show "$W")"
[[ ! -e $_SCRATCH/inside ]] || fail "lock run on h2 ran its command while h3 held the lock"
printf 'delete\ncontinue -a &\ndetach\nquit\n' >&3
exec 3>&-
bg_wait "$GD"
on 3 expect_exit 0 "$EVCTL" lock release X --owner "$VO"
wait_until "[[ -e $_SCRATCH/inside ]]" || fail "lock run on h2 did not get the lock in its turn: $(bg_show "$W")"
kill -TERM -- -"$W"
bg_wait "$W"
