#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-relet.sh - an acquire in a cluster namespace that the daemon
# refuses for its host lease (the lease revoked in etcd, which the daemon
# learns only at its next keepalive) waits for the next lease, even when
# that lease is already in the segment's header by the time the client
# looks (the client held by a gdb breakpoint at cluster_wait_lease until
# the host has it): it then takes the free semaphore, instead of waiting
# for yet another lease until its timeout.  Skipped without the etcd
# binaries or gdb.
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
for i in 1 2; do host_start "$i"; done

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
G=$_SCRATCH/gdb
mkdir -p "$G"
on 2 bg_start 300 gdb -q -batch -nx -ex 'set breakpoint pending on' -ex 'set pagination off' \
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
