#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-config.sh - a cluster host set up by its configuration file
# alone: host B is "evd --user", as the user evd.service runs it, whose
# ~/.config/evd/evd.conf ($XDG_CONFIG_HOME) names the etcd members, the
# prefix, the host, the lease and the TLS files (in a directory whose name
# holds a space); host A is "evd --config FILE" with --host-id on the
# command line, which overrides the file's.  A set on A releases a waiter
# on B, through a 3-member etcd cluster that demands client certificates.
# Skipped when the etcd binaries or openssl are absent.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../cluster/hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/hosts.sh"
cluster_up tls

PREFIX=evd-conf-$$/
TS="$_SCRATCH/my certs"
mkdir -p "$TS"
cp "$ETCD3_TLS_DIR/ca.pem" "$ETCD3_TLS_DIR/client.pem" "$ETCD3_TLS_DIR/client-key.pem" "$TS/"

# cluster_conf FILE HOST: the settings of a cluster host named HOST.
cluster_conf() {
        mkdir -p "$(dirname "$1")"
        cat >"$1" <<EOF
# a cluster host, from this file alone
etcd = $ETCD3_URLS
etcd-prefix = $PREFIX

host-id = $2
lease-ttl = 5s
etcd-cacert = $TS/ca.pem
etcd-cert   = $TS/client.pem
etcd-key    = $TS/client-key.pem
EOF
}

check "host A: evd --config FILE, its --host-id on the command line over the file's"
evd_mkdir
DA=$EVD_DIR
cluster_conf "$_SCRATCH/a.conf" from-the-file
evd_start --ephemeral --config "$_SCRATCH/a.conf" --host-id ha
# (evd_start may return when the socket appears; "ready" comes once the
# cluster mode runs)
wait_until "grep -q 'ready, serving' '$DA/evd.log'" || fail "host A never logged ready"
[[ -f $DA/evd.cluster ]] || fail "host A is not a cluster host: $(tail -n 5 "$DA/evd.log")"
grep -qx 'host ha' "$DA/evd.cluster" || fail "host A is not named ha: $(cat "$DA/evd.cluster")"
grep -qx "prefix $PREFIX" "$DA/evd.cluster" || fail "host A does not use the file's prefix: $(cat "$DA/evd.cluster")"

check "host B: evd --user and nothing else, its settings from \$XDG_CONFIG_HOME/evd/evd.conf"
XB=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-xdg.XXXXXX")
_DIRS+=("$XB/evd" "$XB")
XCB=$_SCRATCH/b-config
cluster_conf "$XCB/evd/evd.conf" hb
env -u EVD_RUNTIME_DIR XDG_RUNTIME_DIR="$XB" XDG_CONFIG_HOME="$XCB" "$EVD" --user \
        >>"$_SCRATCH/b.log" 2>&1 </dev/null &
BPID=$!
_PIDS+=("$BPID")
wait_until "! alive $BPID || grep -q 'ready, serving' '$_SCRATCH/b.log'" ||
        fail "host B never became ready: $(cat "$_SCRATCH/b.log")"
alive "$BPID" || fail "host B exited: $(cat "$_SCRATCH/b.log")"
note_segment_of "$BPID" >/dev/null
[[ -f $XB/evd/evd.cluster ]] || fail "host B is not a cluster host: $(cat "$_SCRATCH/b.log")"
grep -qx 'host hb' "$XB/evd/evd.cluster" || fail "host B is not named hb: $(cat "$XB/evd/evd.cluster")"
grep -qx "prefix $PREFIX" "$XB/evd/evd.cluster" || fail "host B does not use the file's prefix: $(cat "$XB/evd/evd.cluster")"

check "a set on host A releases a waiter on host B"
EVD_RUNTIME_DIR=$XB/evd EVD_NO_AUTOSTART=1 bg_start 240 "$EVCTL" wait conf-ready --timeout 200s
w=$BG_PID
EVD_RUNTIME_DIR=$XB/evd EVD_NO_AUTOSTART=1 wait_until "[[ \$(waiters conf-ready) == 1 ]]" ||
        fail "the waiter on host B never blocked"
EVD_RUNTIME_DIR=$DA EVD_NO_AUTOSTART=1 expect_exit 0 "$EVCTL" set conf-ready --value from-a
bg_expect "$w" 0 from-a
check "... and the event is in etcd under the file's prefix"
etcd3_ctl get --prefix "$PREFIX" --keys-only >"$_SCRATCH/keys" || fail "etcdctl get failed"
grep -q "^${PREFIX}.*conf-ready" "$_SCRATCH/keys" || fail "no key of conf-ready under $PREFIX: $(cat "$_SCRATCH/keys")"

check "host C: a daemon autostarted by the first evctl --user; that evctl's own set reaches the cluster"
XC=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-xdgc.XXXXXX")
_DIRS+=("$XC/evd" "$XC")
XCC=$_SCRATCH/c-config
cluster_conf "$XCC/evd/evd.conf" hc
env -u EVD_RUNTIME_DIR -u EVD_NO_AUTOSTART XDG_RUNTIME_DIR="$XC" XDG_CONFIG_HOME="$XCC" \
        timeout -k 2 "$T_WAIT" "$EVCTL" --user set first-of-c --value from-c </dev/null ||
        fail "evctl --user set, autostarting host C's daemon, exited $?"
[[ -f $XC/evd/evd.pid ]] && _PIDS+=("$(cat "$XC/evd/evd.pid")")
[[ -f $XC/evd/evd.cluster ]] || fail "the autostarted daemon of host C is not a cluster host"
EVD_RUNTIME_DIR=$DA EVD_NO_AUTOSTART=1 wait_until "[[ \$(show_field first-of-c value) == from-c ]]" ||
        fail "host A never saw the set made by the evctl that started host C's daemon"

kill -TERM "$BPID"
_reap "$BPID" "$T_WAIT"
((REAP_RC == 0)) || fail "host B did not stop cleanly (exit $REAP_RC): $(tail -n 5 "$_SCRATCH/b.log")"
exit 0
