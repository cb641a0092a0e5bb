#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# autostart.sh - with no daemon, the first evctl call starts one (detached,
# exactly one even under concurrent first calls); EVD_NO_AUTOSTART=1 and an
# unstartable daemon give exit 5 with one line.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ndaemons DIR: how many evd processes serve DIR.
ndaemons() { daemon_pids_for "$1" | wc -l; }

check "no daemon: 'evctl set x' starts one by itself"
evd_mkdir
dir1=$EVD_DIR
[[ -z $(daemon_pids_for "$dir1") ]] || fail "a daemon already serves the fresh dir $dir1"
# Through a pipe: an autostarted daemon that kept evctl's stdout or stderr
# open would keep the reader (cat) waiting until timeout kills it (124).
rc=0
# shellcheck disable=SC2016
timeout -k 2 120 bash -c '"$EVCTL" set x --value hi 2>&1 | cat' >"$_SCRATCH/first.out" 2>&1 || rc=$?
((rc != 124)) || fail "the first call hung: the autostarted daemon kept evctl's stdout/stderr open?
$(cat "$_SCRATCH/first.out")"
((rc == 0)) || fail "the first 'evctl set x' (autostart) exited $rc
$(cat "$_SCRATCH/first.out")"
[[ ! -s $_SCRATCH/first.out ]] || fail "the first 'evctl set x' printed something
$(cat "$_SCRATCH/first.out")"
wait_until "[[ \$(ndaemons $dir1) -ge 1 ]]" || fail "no evd process serves $dir1 after the first call"
pid=$(first_daemon_pid "$dir1")
note_segment_of "$pid" >/dev/null
[[ -S $dir1/evd.sock ]] || fail "no evd.sock in $dir1"
[[ -f $dir1/evd.pid ]] || fail "no evd.pid in $dir1"
[[ $(tr -dc 0-9 <"$dir1/evd.pid") == "$pid" ]] || fail "evd.pid holds $(cat "$dir1/evd.pid"), the daemon is $pid"
say "autostarted evd pid $pid"
check "the autostarted daemon is detached (own session, not our child)"
ppid=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, a, " "); print a[2] }' "/proc/$pid/stat")
sid=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, a, " "); print a[4] }' "/proc/$pid/stat")
[[ $ppid != "$$" ]] || fail "the autostarted evd is a child of the test shell"
mysid=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, a, " "); print a[4] }' "/proc/$$/stat")
[[ $sid != "$mysid" ]] || fail "the autostarted evd is still in the caller's session (no setsid)"
check "state works through the autostarted daemon"
expect_exit 0 "$EVCTL" wait x --timeout 0
expect_stdout hi
expect_exit 0 "$EVCTL" create y --auto
expect_exit 0 "$EVCTL" list
expect_stdout_match '^y[[:space:]]'
[[ $(ndaemons "$dir1") == 1 ]] || fail "$(ndaemons "$dir1") daemons serve $dir1, want 1"

check "after kill -9 of the autostarted daemon, the next create starts a new one and the state is kept"
kill -KILL "$pid"
wait_until "! alive $pid" || fail "evd $pid did not die"
expect_exit 0 "$EVCTL" create z
wait_until "[[ \$(ndaemons $dir1) == 1 ]]" || fail "$(ndaemons "$dir1") daemons serve $dir1 after restart, want 1"
pid2=$(first_daemon_pid "$dir1")
[[ $pid2 != "$pid" ]] || fail "the daemon pid did not change"
expect_exit 0 "$EVCTL" wait x --timeout 0
expect_stdout hi

check "4 concurrent first calls start exactly one daemon"
evd_mkdir
dir2=$EVD_DIR
pids=()
for i in 1 2 3 4; do
        bg_start 15 "$EVCTL" set "c$i" --value "v$i"
        pids+=("$BG_PID")
done
for p in "${pids[@]}"; do
        bg_expect "$p" 0
        [[ ! -s $(bg_out "$p") ]] || fail "a concurrent first 'set' printed something
$(bg_show "$p")"
done
# a losing daemon may take a moment to notice and exit
wait_until "[[ \$(ndaemons $dir2) == 1 ]]" ||
        fail "$(ndaemons "$dir2") daemons serve $dir2 after 4 concurrent first calls, want 1: $(daemon_pids_for "$dir2" | tr '\n' ' ')"
sleep 0.5
[[ $(ndaemons "$dir2") == 1 ]] || fail "$(ndaemons "$dir2") daemons serve $dir2, want 1"
for i in 1 2 3 4; do
        expect_exit 0 "$EVCTL" wait "c$i" --timeout 0
        expect_stdout "v$i"
done

check "EVD_NO_AUTOSTART=1 in a fresh dir: exit 5, one line, no daemon"
evd_mkdir
dir3=$EVD_DIR
expect_error 5 '' env EVD_NO_AUTOSTART=1 "$EVCTL" set x
expect_error 5 '' env EVD_NO_AUTOSTART=1 "$EVCTL" wait x --timeout 1s
check "--help and --version start no daemon"
expect_exit 0 "$EVCTL" set --help
expect_exit 0 "$EVCTL" list --help
expect_exit 0 "$EVCTL" --version
sleep 0.2
[[ -z $(daemon_pids_for "$dir3") ]] || fail "a daemon was started despite EVD_NO_AUTOSTART=1 (or by --help)"
[[ ! -e $dir3/evd.sock ]] || fail "evd.sock exists despite EVD_NO_AUTOSTART=1"

check "an unstartable daemon (EVD_DAEMON=/nonexistent) gives exit 5, one line, without hanging"
start=$(now_ms)
expect_error 5 '' env EVD_DAEMON=/nonexistent/evd "$EVCTL" set x
el=$(($(now_ms) - start))
say "evctl gave up on an unstartable daemon after ${el} ms"
exit 0
