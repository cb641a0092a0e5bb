# shellcheck shell=bash
# A 3-member etcd cluster on 127.0.0.1 for the cluster-mode tests; source it.
#   etcd3_start        start m1..m3 on free ports; sets ETCD3_URLS (for evd --etcd)
#                      and ETCD3_EPS (for etcdctl --endpoints)
#   etcd3_kill I       SIGKILL member I;  etcd3_restart I  start it again
#   etcd3_pause I      SIGSTOP member I;  etcd3_resume I   SIGCONT
#   etcd3_ctl ARGS     etcdctl on every endpoint
#   etcd3_stop         stop every member, remove the data
# The data directories live under one mktemp -d, removed by etcd3_stop.
ETCD=${ETCD:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
ETCD3_DIR=
declare -a ETCD3_PID ETCD3_CPORT ETCD3_PPORT

# Six free TCP ports on 127.0.0.1: bound once by the kernel, then released
# (the window in which someone else may take one is tiny on a test machine).
etcd3_free_ports() {
        python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

etcd3_member() { # I STATE
        local i=$1
        ETCDCTL_API=3 "$ETCD" --name "m$i" --data-dir "$ETCD3_DIR/m$i" \
                --listen-client-urls "http://127.0.0.1:${ETCD3_CPORT[$i]}" \
                --advertise-client-urls "http://127.0.0.1:${ETCD3_CPORT[$i]}" \
                --listen-peer-urls "http://127.0.0.1:${ETCD3_PPORT[$i]}" \
                --initial-advertise-peer-urls "http://127.0.0.1:${ETCD3_PPORT[$i]}" \
                --initial-cluster "$ETCD3_CLUSTER" --initial-cluster-state "$2" \
                --initial-cluster-token "evd-test-$$" >>"$ETCD3_DIR/m$i.log" 2>&1 &
        ETCD3_PID[$i]=$!
}

etcd3_ctl() { ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ETCD3_EPS" --dial-timeout 2s --command-timeout 5s "$@"; }

etcd3_wait_healthy() { # I...
        local i n
        for i in "$@"; do
                for n in $(seq 1 600); do
                        ETCDCTL_API=3 "$ETCDCTL" --endpoints "127.0.0.1:${ETCD3_CPORT[$i]}" \
                                --dial-timeout 1s endpoint health >/dev/null 2>&1 && break
                        sleep 0.1
                done
                [ "$n" -lt 600 ] || { echo "etcd member m$i never became healthy" >&2; return 1; }
        done
}

etcd3_start() {
        ETCD3_DIR=$(mktemp -d)
        local p i
        read -ra p <<<"$(etcd3_free_ports)"
        for i in 1 2 3; do
                ETCD3_CPORT[$i]=${p[$((i - 1))]}
                ETCD3_PPORT[$i]=${p[$((i + 2))]}
        done
        ETCD3_CLUSTER="m1=http://127.0.0.1:${ETCD3_PPORT[1]},m2=http://127.0.0.1:${ETCD3_PPORT[2]},m3=http://127.0.0.1:${ETCD3_PPORT[3]}"
        ETCD3_URLS="http://127.0.0.1:${ETCD3_CPORT[1]},http://127.0.0.1:${ETCD3_CPORT[2]},http://127.0.0.1:${ETCD3_CPORT[3]}"
        ETCD3_EPS="127.0.0.1:${ETCD3_CPORT[1]},127.0.0.1:${ETCD3_CPORT[2]},127.0.0.1:${ETCD3_CPORT[3]}"
        for i in 1 2 3; do etcd3_member "$i" new; done
        etcd3_wait_healthy 1 2 3
}

# (Every command that may fail is guarded: callers run under set -e.)
etcd3_kill() {
        kill -9 "${ETCD3_PID[$1]}" 2>/dev/null || true
        wait "${ETCD3_PID[$1]}" 2>/dev/null || true
        ETCD3_PID[$1]=
}
etcd3_restart() { etcd3_member "$1" existing; etcd3_wait_healthy "$1"; }
etcd3_pause() { kill -STOP "${ETCD3_PID[$1]}" || true; }
etcd3_resume() { kill -CONT "${ETCD3_PID[$1]}" || true; }

etcd3_stop() {
        local i
        for i in 1 2 3; do
                [ -n "${ETCD3_PID[$i]:-}" ] || continue
                kill -CONT "${ETCD3_PID[$i]}" 2>/dev/null || true
                kill "${ETCD3_PID[$i]}" 2>/dev/null || true
        done
        for i in 1 2 3; do
                [ -z "${ETCD3_PID[$i]:-}" ] || wait "${ETCD3_PID[$i]}" 2>/dev/null || true
                ETCD3_PID[$i]=
        done
        [ -z "$ETCD3_DIR" ] || rm -rf "$ETCD3_DIR"
        ETCD3_DIR=
}
