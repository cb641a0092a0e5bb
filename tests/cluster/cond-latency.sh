#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cond-latency.sh [ROUNDS] - how long a condition's notify takes across two
# hosts of a cluster namespace: a 3-member etcd cluster on localhost ports
# (etcd3.sh), two daemons (hosts b1 and b2) of the build in $BUILD (default
# build/), and the Python package of the source tree.  Each round, a
# process on b2 takes the lock and waits on the condition; once its wait
# has freed the lock (a handshake: the notifier takes that lock), the
# notifier on b1 notifies one and releases.  Printed: the notify call, and
# the time from the notify's start to the waiter's return with the lock
# (which includes b1's release and b2's acquire).  Needs etcd, etcdctl and
# python3.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$SRC/build}
# shellcheck source=etcd3.sh
. "$SRC/tests/cluster/etcd3.sh"
etcd3_start
D1=$(mktemp -d) D2=$(mktemp -d)
"$BUILD/daemon/evd" --runtime-dir "$D1" --etcd "$ETCD3_URLS" --etcd-prefix "cond-lat-$$/" \
        --host-id b1 --ephemeral 2>"$D1.log" &
P1=$!
"$BUILD/daemon/evd" --runtime-dir "$D2" --etcd "$ETCD3_URLS" --etcd-prefix "cond-lat-$$/" \
        --host-id b2 --ephemeral 2>"$D2.log" &
P2=$!
trap 'kill $P1 $P2; wait $P1 $P2 || true; etcd3_stop; rm -rf "$D1" "$D2" "$D1.log" "$D2.log"' EXIT
for d in "$D1" "$D2"; do
        for _ in $(seq 200); do [[ -f $d/evd.cluster ]] && break; sleep 0.05; done
done
EVD_LIBEVD=$BUILD/lib/libevd.so.1 PYTHONPATH=$SRC/python python3 - "$D1" "$D2" "${1:-30}" <<'PYEOF'
import os, sys, time, statistics, evd
d1, d2, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
l1 = evd.Lock(name="L", namespace=d1)
c1 = evd.Condition(l1, name="C", namespace=d1)
l2 = evd.Lock(name="L", namespace=d2)
c2 = evd.Condition(l2, name="C", namespace=d2)
call, wake = [], []
for _ in range(rounds):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
                os.close(r)
                l2.acquire()
                os.write(w, b"x")
                ok = c2.wait(30)
                os.write(w, repr(time.monotonic() if ok else -1.0).encode())
                l2.release()
                os._exit(0)
        os.close(w)
        os.read(r, 1)
        l1.acquire()  # granted once the waiter's wait freed the lock
        t0 = time.monotonic()
        c1.notify(1)
        t1 = time.monotonic()
        l1.release()
        woke = float(os.read(r, 64).decode())
        os.waitpid(pid, 0)
        os.close(r)
        if woke < 0:
                sys.exit("a waiter timed out")
        call.append((t1 - t0) * 1e3)
        wake.append((woke - t0) * 1e3)
def q(v):
        v = sorted(v)
        return f"median {statistics.median(v):.2f} / p90 {v[max(int(len(v) * 0.9) - 1, 0)]:.2f}"
print(f"rounds: {rounds}")
print(f"notify call on b1 (ms): {q(call)}")
print(f"notify starts on b1 -> wait returns on b2 holding the lock (ms): {q(wake)}")
PYEOF
