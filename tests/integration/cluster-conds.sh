#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-conds.sh - conditions of a cluster namespace (evd --etcd) across
# three daemons (hosts) over a 3-member etcd cluster on localhost ports,
# through libevd (the Python package of the source tree): waiters on two
# hosts, a notify of 1 from a third wakes exactly one, which holds the lock
# when its wait returns; a notify-all wakes every waiter on every host; no
# notify is lost when it comes right after a wait on another host released
# the lock (the notifier was blocked on that lock); a waiter SIGKILLed does
# not swallow a notify, whether its daemon deleted its key first or the
# notify reached the key first (its daemon stopped meanwhile: it passes the
# notify on); a notify made while the waiter's daemon is dead wakes it once
# the daemon is back; a condition deleted under a waiter ends its wait
# (EIDRM) with the lock held; a timed-out wait returns with the lock held
# and leaves no key; a condition whose lock is of another namespace is
# refused, saying so, and one bound to another lock is refused.  Every wait is a handshake
# (waiter keys counted in etcd, files the helper writes); deadlines only
# catch hangs.  Skipped when the etcd binaries are absent.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../cluster/hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/hosts.sh"
need_python
cluster_up

for i in 1 2 3; do host_start "$i"; done

# libevd of this build, next to the evctl under test
export EVD_LIBEVD=${EVD_LIBEVD:-$(dirname "$(dirname "$EVCTL")")/lib/libevd.so.1}
export PYTHONPATH=$SOURCE_ROOT/python
D=$_SCRATCH/cond
mkdir -p "$D"
# cond.py wait COND LOCK TAG TIMEOUT HOLD: take LOCK, write TAG.in, wait
# for TAG.start when it exists as a directory marker (TAG.gate), wait on
# COND; print "woke" or "timeout" and whether this process holds LOCK
# then ("owned"/"not-owned"); with HOLD=hold keep LOCK until TAG.go.
# cond.py notify COND LOCK N|all: take LOCK, notify, release.
cat >"$D/cond.py" <<'PYEOF'
import os, sys, time, evd
d = os.environ["COND_DIR"]
def waitfile(p):
        end = time.monotonic() + 200
        while not os.path.exists(p):
                if time.monotonic() > end:
                        sys.exit(9)
                time.sleep(0.01)
mode, cname, lname = sys.argv[1:4]
l = evd.Lock(name=lname)
c = evd.Condition(l, name=cname)
if mode == "wait":
        tag, timeout, hold = sys.argv[4], float(sys.argv[5]), sys.argv[6]
        l.acquire()
        open(os.path.join(d, tag + ".in"), "w").close()
        if os.path.exists(os.path.join(d, tag + ".gate")):
                waitfile(os.path.join(d, tag + ".start"))
        try:
                woke = c.wait(timeout)
                what = "woke" if woke else "timeout"
        except OSError as e:
                woke, what = False, "error " + str(e.errno)
        owned = l._holder() == os.getpid()
        print(what + " " + ("owned" if owned else "not-owned"), flush=True)
        open(os.path.join(d, tag + ".out"), "w").write("done\n")
        if hold == "hold":
                waitfile(os.path.join(d, tag + ".go"))
        l.release()
        sys.exit(0 if woke else 1)
else:
        l.acquire()
        if sys.argv[4] == "all":
                c.notify_all()
        else:
                c.notify(int(sys.argv[4]))
        l.release()
PYEOF
export COND_DIR=$D
# waiter I TAG [TIMEOUT [HOLD]]: a waiter on host hI (its pid in BG_PID).
waiter() {
        on "$1" bg_start 240 "$PY_EVD" "$D/cond.py" wait "${COND:-C}" L "$2" "${3:-200}" "${4:-nohold}"
}
notify() {
        on "$1" expect_exit 0 "$PY_EVD" "$D/cond.py" notify "${COND:-C}" L "$2"
}
# keys COND: the waiter keys COND has in etcd.
keys() {
        etcd3_ctl get --prefix "${PREFIX}cond/$1/w/" --keys-only | grep -c . || true
}
nkeys() {
        wait_until "[[ \$(keys $1) == $2 ]]" || fail "$1 has $(keys "$1") waiter keys in etcd, want $2"
}
# doomed_before_holder TAG1 TAG2: a waiter TAG1 on h2 (pk: its process,
# to be killed), then a waiter TAG2 on h1 that keeps the lock once woken
# (pw), each in line once its key is in etcd.
doomed_before_holder() {
        waiter 2 "$1"
        pk=$(bg_child "$BG_PID")
        nkeys C 1
        waiter 1 "$2" 200 hold
        pw=$BG_PID
        nkeys C 2
}
done_of() { [[ -f $D/$1.out ]]; }

check "waiters on h1 and h2; a notify of 1 from h3 wakes exactly one, which holds the lock when its wait returns"
waiter 1 a 200 hold
pa=$BG_PID
waiter 2 b 200 hold
pb=$BG_PID
nkeys C 2
notify 3 1
wait_until "done_of a || done_of b" || fail "nobody woke"
# The notify deleted the keys it woke before any waiter could wake.
[[ $(keys C) == 1 ]] || fail "a notify of 1 deleted $((2 - $(keys C))) waiter keys"
if done_of a; then first=a pf=$pa other=b po=$pb; else first=b pf=$pb other=a po=$pa; fi
[[ $(cat "$(bg_out "$pf")") == "woke owned" ]] || fail "the woken waiter says '$(cat "$(bg_out "$pf")")'"
! done_of "$other" || fail "a notify of 1 woke both waiters"
for i in 1 2 3; do
        [[ $(on "$i" show_field L state) == held ]] || fail "h$i: the lock is not held after the wake-up"
done
touch "$D/$first.go"
bg_expect "$pf" 0
check "the other waiter is still waiting; a second notify wakes it"
alive "$po" || fail "the other waiter ended"
! done_of "$other" || fail "the other waiter woke without a notify"
notify 1 1
wait_until "done_of $other" || fail "the second notify woke nobody"
touch "$D/$other.go"
bg_expect "$po" 0 "woke owned"
# A wait releases the lock cleanly: the next holder is not told it was
# abandoned (the Python package would warn).
for p in "$pa" "$pb"; do
        ! grep -qi abandoned "$(bg_err "$p")" || fail "a waiter was told the lock was abandoned: $(cat "$(bg_err "$p")")"
done
nkeys C 0

check "notify-all from h2 wakes every waiter on every host (two on h1, one on h3)"
W=()
rm -f "$D"/*.out
waiter 1 c1
W+=("$BG_PID")
waiter 1 c2
W+=("$BG_PID")
waiter 3 c3
W+=("$BG_PID")
nkeys C 3
notify 2 all
for p in "${W[@]}"; do bg_expect "$p" 0 "woke owned"; done
nkeys C 0

check "no lost notify: a notifier on h2 blocked on the lock gets it from h1's wait and notifies at once; the waiter wakes (3 rounds)"
for round in 1 2 3; do
        tag=n$round
        touch "$D/$tag.gate"
        waiter 1 "$tag"
        pw=$BG_PID
        wait_until "[[ -f $D/$tag.in ]]" || fail "the waiter did not take the lock"
        on 2 bg_start 240 "$PY_EVD" "$D/cond.py" notify C L 1
        pn=$BG_PID
        # The notifier waits for the lock on h2 (a contender key of L there).
        wait_until "[[ \$(etcd3_ctl get --prefix '${PREFIX}sem/L/h/h2/' --keys-only | grep -c .) == 1 ]]" ||
                fail "the notifier did not queue for the lock"
        touch "$D/$tag.start"
        bg_expect "$pn" 0
        # The wait's txn handed the lock on cleanly: not abandoned.
        ! grep -qi abandoned "$(bg_err "$pn")" || fail "the notifier was told the lock was abandoned"
        bg_expect "$pw" 0 "woke owned"
done
nkeys C 0

check "a waiter SIGKILLed on h2 (its daemon deletes its key) does not swallow a notify: h1's waiter behind it gets it"
doomed_before_holder k1 k2
kill -KILL "$pk"
nkeys C 1
notify 3 1
wait_until "done_of k2" || fail "the notify was lost on the dead waiter"
touch "$D/k2.go"
bg_expect "$pw" 0 "woke owned"

check "a notify that reaches a dead waiter's key before its daemon does is passed on by that daemon"
doomed_before_holder p1 p2
# h2's daemon stopped (well within its lease): nobody deletes the dead
# waiter's key, so the notify takes it.
kill -STOP "${HPID[2]}"
kill -KILL "$pk"
wait_until "! alive $pk" || fail "the waiter did not die"
notify 3 1
nkeys C 1
! done_of p2 || fail "the notify woke h1's waiter while the dead one's key was first"
kill -CONT "${HPID[2]}"
wait_until "done_of p2" || fail "h2's daemon did not pass the dead waiter's notify on"
touch "$D/p2.go"
bg_expect "$pw" 0 "woke owned"
nkeys C 0

check "a notify made while the waiter's daemon is SIGKILLed wakes the waiter once the daemon is started again"
waiter 2 r1 200 hold
pw=$BG_PID
nkeys C 1
kill -KILL "${HPID[2]}"
wait_until "! alive ${HPID[2]}" || fail "h2's daemon did not die"
notify 3 1
nkeys C 0
! done_of r1 || fail "the waiter woke while its daemon was dead"
host_start 2
wait_until "done_of r1" || fail "the restarted daemon did not wake the notified waiter"
touch "$D/r1.go"
bg_expect "$pw" 0 "woke owned"

check "the condition deleted on h3 under a waiter on h1: the wait ends (EIDRM) with the lock held"
COND=D waiter 1 del 200 hold
pw=$BG_PID
nkeys D 1
on 3 expect_exit 0 "$EVCTL" delete D
wait_until "done_of del" || fail "the wait did not end when its condition was deleted"
[[ $(cat "$(bg_out "$pw")") == "error 43 owned" ]] || fail "the waiter of a deleted condition says '$(cat "$(bg_out "$pw")")'"
nkeys D 0
touch "$D/del.go"
bg_expect "$pw" 1

check "a wait that times out returns with the lock held and leaves no key"
waiter 1 t 1 hold
pw=$BG_PID
wait_until "done_of t" || fail "the timed-out wait did not return"
[[ $(cat "$(bg_out "$pw")") == "timeout owned" ]] || fail "the timed-out waiter says '$(cat "$(bg_out "$pw")")'"
[[ $(on 3 show_field L state) == held ]] || fail "h3: the lock is not held after the timeout"
nkeys C 0
touch "$D/t.go"
bg_expect "$pw" 1
[[ $(on 3 show_field L state) == free ]] || fail "h3: the lock is not free after the release"

check "a condition whose lock is of another namespace (a local one) is refused, saying so; one bound to another lock is refused"
evd_mkdir
LOCAL=$EVD_DIR
evd_start
cat >"$D/other.py" <<'PYEOF'
import os, sys, evd
from ctypes import byref, c_void_p
from evd import _lib
l = evd.Lock(name="L", namespace=sys.argv[1])
h = c_void_p()
r = _lib.cond_open(_lib.context(sys.argv[2]), b"X", l._h, _lib.EVD_CREATE, byref(h))
print(r, _lib.error(r, "open") if r < 0 else "")
l2 = evd.Lock(name="L2", namespace=sys.argv[2])
try:
        evd.Condition(l2, name="C", namespace=sys.argv[2])
        print("bound")
except OSError as e:
        print(e)
PYEOF
out=$("$PY_EVD" "$D/other.py" "$LOCAL" "${H[1]}" 2>&1) || fail "other.py: $out"
[[ $out == *"-22"*"not of the condition's context"* ]] || fail "a local lock's condition: '$out'"
[[ $out == *"bound to another lock"* ]] || fail "a condition bound to another lock: '$out'"
on 2 "$EVCTL" show X >/dev/null 2>&1 && fail "the refused condition X exists on h2"
say "ok"
