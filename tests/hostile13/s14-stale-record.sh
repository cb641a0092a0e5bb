#!/usr/bin/env bash
# s14: a lock's waiter on h2 granted (its hold record in h2's segment)
# while its evctl is SIGSTOPped; h2's lease then revoked in etcd (its key
# goes: h3's waiter takes the lock), and h2's daemon gets a new lease while
# its watch has not yet brought the key's deletion (the watch thread held
# by a gdb breakpoint, non-stop: the other threads run).  The waiter,
# SIGCONTed, finds its record; the header's lease is no longer its key's.
# Does it take the hold (lock run starts its command while h3 holds)?
set -euo pipefail
. "$(dirname "$0")/common.sh"
command -v gdb >/dev/null || skip "gdb is needed"
TTL=30
for i in 1 2 3; do host_start "$i"; done
G=$_SCRATCH/gdb; mkdir -p "$G"
on 1 expect_exit 0 "$EVCTL" lock acquire X --owner $$
on 2 bg_start 300 "$EVCTL" lock run X --timeout 250s -- sh -c 'echo inside >"$1"; exec sleep 200' sh "$G/inside"
W=$BG_PID
wait_until "(( \$(keys X) == 2 ))" || fail "W put no key"
bg_start 300 sleep 250
VO=$(bg_child "$BG_PID")
on 3 bg_start 300 "$EVCTL" lock acquire X --owner "$VO" --timeout 250s
V=$BG_PID
wait_until "(( \$(keys X) == 3 ))" || fail "V put no key"
# W's evctl: the lock run process itself (its child waits on the go pipe)
WE=$(bg_child "$W")
kill -STOP "$WE"
on 1 expect_exit 0 "$EVCTL" lock release X --owner $$
on 2 wait_until "[[ -n \$(show_field X holder) ]]" || fail "h2 did not record W's hold"
say "h2 holder: $(on 2 show_field X holder)"
LEASE_GONE=$(lease_of 2)
wait_until "(( \$(etcd3_ctl lease timetolive $LEASE_GONE | sed -n 's/.*remaining(\\([0-9-]*\\)s).*/\\1/p') >= TTL - 2 ))" 60 ||
        fail "h2's lease was not renewed"
# gdb reads its commands from a FIFO, so that its event loop runs between
# them (threads stopped by the attach are resumed); non-stop: a breakpoint
# stops only the thread that hits it.
mkfifo "$G/in"
bg_start 300 sh -c 'exec gdb -q -nx <"$1"' sh "$G/in"
GP=$BG_PID
exec 3>"$G/in"
printf 'set non-stop on\nset pagination off\nset confirm off\nattach %s\n' "${HPID[2]}" >&3
printf 'info threads\necho ATTACHED\\n\n' >&3
wait_until "grep -q ATTACHED '$(bg_out "$GP")'" || fail "gdb did not attach: $(bg_show "$GP")"
printf 'continue -a &\necho RESUMED\\n\n' >&3
wait_until "grep -q RESUMED '$(bg_out "$GP")'" || fail "gdb did not resume"
wait_until "! grep -q '^t' <(for t in /proc/${HPID[2]}/task/*; do cut -d' ' -f3 \$t/stat; done)" || fail "h2's threads stay stopped"
printf 'break on_watch_line\necho ARMED\\n\n' >&3
wait_until "grep -q ARMED '$(bg_out "$GP")'" || fail "gdb did not set the breakpoint"
on 2 expect_exit 0 "$EVCTL" show X
say "h2 answers with gdb attached"
etcd3_ctl lease revoke "$LEASE_GONE" >/dev/null
bg_expect "$V" 0
say "h3 holds X (its waiter acquired)"
wait_until "[[ \$(grep -c 'cluster: host lease' '${H[2]}/evd.log') == 2 ]]" 60 || fail "h2 got no new lease"
wait_until "on 2 \"\$EVCTL\" show X --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"cluster\"][\"lease_left_usec\"] > 25e6 else 1)'" 30 || fail "h2's header has no new lease"
say "h2 holder now (watch held): $(on 2 show_field X holder)"
kill -CONT "$WE"
if wait_until "[[ -e $G/inside ]]" 10; then
        say "BUG: lock run on h2 started its command while h3 holds X"
        r=1
else
        say "ok: lock run on h2 did not start its command"
        r=0
fi
printf 'delete\ncontinue -a &\ndetach\nquit\n' >&3
exec 3>&-
bg_wait "$GP"
say "after the watch goes on: W alive=$(alive "$W" && echo yes || echo no); keys: $(allkeys X | tr '\n' ' ')"
kill -KILL -- -"$W" 2>/dev/null || true
exit $r
