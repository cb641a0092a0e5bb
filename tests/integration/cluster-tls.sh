#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-tls.sh - the cluster mode over TLS with client certificates
# (evd --etcd https://... --etcd-cacert --etcd-cert --etcd-key): two
# daemons share an event through a 3-member etcd cluster that demands a
# client certificate; a daemon without one cannot write (exit 5), and one
# that does not trust the cluster's CA cannot either.  Skipped when the etcd
# binaries or openssl are absent.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../cluster/hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/hosts.sh"
cluster_up tls

PREFIX=evd-tls-$$/
T=$ETCD3_TLS_DIR

host_start 1 --etcd-cacert "$T/ca.pem" --etcd-cert "$T/client.pem" --etcd-key "$T/client-key.pem"
host_start 2 --etcd-cacert "$T/ca.pem" --etcd-cert "$T/client.pem" --etcd-key "$T/client-key.pem"

check "a set on h1 releases a waiter on h2, over TLS with client certificates"
on 2 bg_start 240 "$EVCTL" wait tls-ready --timeout 200s
w=$BG_PID
on 2 wait_until "[[ \$(waiters tls-ready) == 1 ]]" || fail "the waiter on h2 never blocked"
on 1 expect_exit 0 "$EVCTL" set tls-ready --value over-tls
bg_expect "$w" 0 over-tls

check "without a client certificate, writes are refused (exit 5)"
host_start 3 --etcd-cacert "$T/ca.pem"
on 3 expect_exit 5 "$EVCTL" set tls-other --value x

check "without the cluster's CA, writes are refused (exit 5)"
host_start 4 --etcd-cert "$T/client.pem" --etcd-key "$T/client-key.pem"
on 4 expect_exit 5 "$EVCTL" set tls-other --value x
[[ -n $LAST_ERR ]] || fail "no message from a set without the CA"

check "the TLS options go with --etcd, and --etcd-cert with --etcd-key"
run "$EVD" --runtime-dir "${H[1]}" --etcd-cacert "$T/ca.pem"
((LAST_RC == 2)) || fail "--etcd-cacert without --etcd: exit $LAST_RC"
run "$EVD" --runtime-dir "${H[1]}" --etcd "$ETCD3_URLS" --etcd-cert "$T/client.pem"
((LAST_RC == 2)) || fail "--etcd-cert without --etcd-key: exit $LAST_RC"
