#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.sh [ROUNDS] - the cluster mode's latencies (tools/evd-cluster-bench.c)
# between two daemons over a 3-member etcd cluster on localhost ports.  Run
# from the top of the tree after building into build/.  (etcdctl's own
# figures, measured the same way on this kind of machine, are in the
# research notes that docs/cluster.md cites.)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
EVD=${EVD:-$top/build/daemon/evd}
BENCH=${BENCH:-$top/build/tools/evd-cluster-bench}
rounds=${1:-50}
# shellcheck source=etcd3.sh
. "$here/etcd3.sh"
dirs=()
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        etcd3_stop
        for p in "${dirs[@]}"; do rm -rf "$p" "$p.log"; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
etcd3_start
for h in a b; do
        d=$(mktemp -d)
        dirs+=("$d")
        "$EVD" --runtime-dir "$d" --etcd "$ETCD3_URLS" --etcd-prefix "bench-$$/" --host-id "$h" \
                --ephemeral 2>"$d.log" &
        pids+=("$!")
        for _ in $(seq 1 200); do [[ -S $d/evd.sock && -f $d/evd.cluster ]] && break; sleep 0.05; done
done
"$BENCH" "${dirs[0]}" "${dirs[1]}" "$rounds"
