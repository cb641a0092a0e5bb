# shellcheck shell=bash
# The scaffolding every cluster-mode test (tests/integration/cluster-*.sh)
# shares: source it right after lib.sh.  Sourcing it skips the test, saying
# so, when the etcd binaries are absent; then it sources etcd3.sh.
#   cluster_up [tls]       start the 3-member etcd cluster (etcd3_start) and
#                          stop it at exit, before lib.sh's cleanup; with
#                          tls, over TLS (ETCD3_TLS=1: the test skips,
#                          saying so, without openssl)
#   host_start I [ARGS]    a daemon serving host hI's runtime directory (made
#                          at its first start, kept for a restart) as host
#                          "hI" under $PREFIX, --ephemeral, with --lease-ttl
#                          $TTL when TTL is set (TTL=60 host_start 4: another
#                          lease for this host), and ARGS; H[I] is its
#                          directory, HPID[I] the daemon's pid
#   host_kill I            SIGKILL host hI's daemon and reap it
#   on I CMD...            run CMD (a lib.sh function or a command) on host hI
#   blocked I NAME N       host hI shows N waiters on NAME (within the
#                          generous deadline), or the test fails
#   waiters_on I NAME N [ARGS...]
#                          start N `evctl wait NAME` on hI (their pids
#                          appended to W)
# PREFIX, the etcd prefix, is evd-test-$$/; a test may set another after.
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
        skip "etcd and etcdctl are needed (Debian: apt-get install etcd-server etcd-client)"
fi
# shellcheck source=etcd3.sh
. "$(dirname "${BASH_SOURCE[0]}")/etcd3.sh"

PREFIX=evd-test-$$/
declare -a H HPID

cluster_up() {
        local what="the etcd cluster"
        if [[ ${1:-} == tls ]]; then
                command -v openssl >/dev/null || skip "openssl is needed to make the test certificates"
                ETCD3_TLS=1
                what+=" (TLS)"
        fi
        etcd3_start || fail "$what did not start"
        # The cluster goes first, then lib.sh's cleanup (which exits) stops
        # the daemons; set +e so that nothing here can end the trap before
        # it, and the test's status handed on to it in $?.
        # shellcheck disable=SC2154 # _rc is the trap's own
        trap '_rc=$?; set +e; etcd3_stop; (exit $_rc); _cleanup' EXIT
}

host_start() {
        local i=$1
        shift
        if [[ -z ${H[$i]:-} ]]; then
                evd_mkdir
                H[$i]=$EVD_DIR
        fi
        EVD_DIR=${H[$i]}
        local ttl=()
        [[ -z ${TTL:-} ]] || ttl=(--lease-ttl "$TTL")
        evd_start --etcd "$ETCD3_URLS" --etcd-prefix "$PREFIX" --host-id "h$i" --ephemeral "${ttl[@]}" "$@"
        HPID[$i]=$EVD_PID
}

host_kill() {
        kill -KILL "${HPID[$1]}"
        wait "${HPID[$1]}" 2>/dev/null || true
}

on() {
        local i=$1
        shift
        EVD_RUNTIME_DIR=${H[$i]} EVD_NO_AUTOSTART=1 "$@"
}

blocked() {
        on "$1" wait_until "[[ \$(waiters $2) == $3 ]]" 2>/dev/null ||
                fail "h$1: show $2 reports $(on "$1" waiters "$2") waiters, want $3"
}

waiters_on() {
        local i=$1 name=$2 n=$3 k
        shift 3
        for ((k = 0; k < n; k++)); do
                on "$i" bg_start 240 "$EVCTL" wait "$name" --timeout 200s "$@"
                W+=("$BG_PID")
        done
}
