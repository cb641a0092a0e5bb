# shellcheck shell=bash
# A 3-member etcd cluster on 127.0.0.1 for the cluster-mode tests; source it.
#   etcd3_start        start m1..m3 on free ports; sets ETCD3_URLS (for evd --etcd)
#                      and ETCD3_EPS (for etcdctl --endpoints)
#   etcd3_kill I       SIGKILL member I;  etcd3_restart I  start it again
#   etcd3_pause I      SIGSTOP member I;  etcd3_resume I   SIGCONT
#   etcd3_ctl ARGS     etcdctl on every endpoint
#   etcd3_stop         stop every member, remove the data
# The data directories live under one mktemp -d, removed by etcd3_stop.
# With ETCD3_TLS=1, the client ports speak TLS and demand a client
# certificate: etcd3_start makes a CA, a server certificate for 127.0.0.1
# and a client one ($ETCD3_TLS_DIR/{ca,client}.pem, client-key.pem); the
# peers stay plain HTTP.
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

# etcd3_tls_files: a CA, and the server's and a client's certificates.
etcd3_tls_files() {
        local d=$ETCD3_TLS_DIR
        mkdir -p "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=evd test CA" \
                -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
        local who
        for who in server client; do
                openssl req -newkey rsa:2048 -nodes -subj "/CN=evd-$who" \
                        -keyout "$d/$who-key.pem" -out "$d/$who.csr" 2>/dev/null
                printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$d/$who.ext"
                openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
                        -CAcreateserial -days 2 -extfile "$d/$who.ext" -out "$d/$who.pem" 2>/dev/null
        done
}

etcd3_member() { # I STATE
        local i=$1 scheme=http tls=()
        if [ "${ETCD3_TLS:-0}" = 1 ]; then
                scheme=https
                tls=(--cert-file "$ETCD3_TLS_DIR/server.pem" --key-file "$ETCD3_TLS_DIR/server-key.pem"
                     --client-cert-auth --trusted-ca-file "$ETCD3_TLS_DIR/ca.pem")
        fi
        ETCDCTL_API=3 "$ETCD" --name "m$i" --data-dir "$ETCD3_DIR/m$i" "${tls[@]}" \
                --listen-client-urls "$scheme://127.0.0.1:${ETCD3_CPORT[$i]}" \
                --advertise-client-urls "$scheme://127.0.0.1:${ETCD3_CPORT[$i]}" \
                --listen-peer-urls "http://127.0.0.1:${ETCD3_PPORT[$i]}" \
                --initial-advertise-peer-urls "http://127.0.0.1:${ETCD3_PPORT[$i]}" \
                --initial-cluster "$ETCD3_CLUSTER" --initial-cluster-state "$2" \
                --initial-cluster-token "evd-test-$$" >>"$ETCD3_DIR/m$i.log" 2>&1 &
        ETCD3_PID[$i]=$!
}

# etcdctl's TLS options when the cluster speaks TLS (to put before its
# command), else nothing.
etcd3_ctl_tls() {
        [ "${ETCD3_TLS:-0}" = 1 ] || return 0
        printf '%s\n' --cacert "$ETCD3_TLS_DIR/ca.pem" --cert "$ETCD3_TLS_DIR/client.pem" \
                --key "$ETCD3_TLS_DIR/client-key.pem"
}
etcd3_ctl() {
        local tls
        mapfile -t tls < <(etcd3_ctl_tls)
        ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ETCD3_EPS" --dial-timeout 2s --command-timeout 5s "${tls[@]}" "$@"
}

etcd3_wait_healthy() { # I...
        local i n tls
        mapfile -t tls < <(etcd3_ctl_tls)
        for i in "$@"; do
                for n in $(seq 1 600); do
                        ETCDCTL_API=3 "$ETCDCTL" --endpoints "127.0.0.1:${ETCD3_CPORT[$i]}" "${tls[@]}" \
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
        local scheme=http
        if [ "${ETCD3_TLS:-0}" = 1 ]; then
                scheme=https
                ETCD3_TLS_DIR=$ETCD3_DIR/tls
                etcd3_tls_files || return 1
        fi
        ETCD3_URLS="$scheme://127.0.0.1:${ETCD3_CPORT[1]},$scheme://127.0.0.1:${ETCD3_CPORT[2]},$scheme://127.0.0.1:${ETCD3_CPORT[3]}"
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
