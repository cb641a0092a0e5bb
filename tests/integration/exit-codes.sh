#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# exit-codes.sh - every evctl exit code 0..8 that can be produced, --help and
# --version, and the one-line error format ("evctl: ...").
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# expect_quiet_or_one_line: stderr is empty or one "evctl: " line.
expect_quiet_or_one_line() {
        [[ -s $LAST_ERR_F ]] || return 0
        expect_one_error_line
}

evd_setup

# ---- 0 ----------------------------------------------------------------------
check "exit 0: set, wait, is-set, clear, create, delete, list, show"
expect_exit 0 "$EVCTL" set e1 --value v1
expect_no_stdout
expect_exit 0 "$EVCTL" wait e1 --timeout 0
expect_stdout v1
expect_exit 0 "$EVCTL" wait e1
expect_stdout v1
expect_exit 0 "$EVCTL" is-set e1
expect_no_stdout
expect_no_stderr
for d in 250ms 5s 2m 1h 10 0.5 1.5s 0; do
        expect_exit 0 "$EVCTL" wait e1 --timeout "$d"
done
expect_exit 0 "$EVCTL" wait e1 --timeout 1s --progress 100ms
expect_exit 0 "$EVCTL" list
expect_exit 0 "$EVCTL" show e1
check "exit 0: the global --runtime-dir option selects the namespace"
expect_exit 0 env -u EVD_RUNTIME_DIR EVD_NO_AUTOSTART=1 "$EVCTL" --runtime-dir "$EVD_DIR" is-set e1
check "exit 0: names at the limits of the rules"
name64=$(printf 'a%.0s' {1..64})
expect_exit 0 "$EVCTL" set "$name64"
expect_exit 0 "$EVCTL" set 'Az09._:@-x'
expect_exit 0 "$EVCTL" set x
expect_exit 0 "$EVCTL" set 'a.-_:@'

# ---- 1 ----------------------------------------------------------------------
check "exit 1: wait --timeout 0 / 200ms on a clear event, is-set false"
expect_exit 0 "$EVCTL" clear e1
expect_exit 1 "$EVCTL" wait e1 --timeout 0
expect_no_stdout
expect_quiet_or_one_line
expect_exit 1 "$EVCTL" wait e1 --timeout 200ms
expect_no_stdout
expect_quiet_or_one_line
expect_exit 1 "$EVCTL" is-set e1
expect_no_stdout
expect_no_stderr
expect_exit 0 "$EVCTL" reset e1
expect_exit 1 "$EVCTL" is-set e1
check "exit 1: is-set of a missing event (prints nothing, creates nothing)"
expect_exit 1 "$EVCTL" is-set never-made
expect_no_stdout
expect_no_stderr
expect_error 4 'never-made' "$EVCTL" show never-made
check "exit 1: is-set of a failed event"
expect_exit 0 "$EVCTL" fail f0 "broken"
expect_exit 1 "$EVCTL" is-set f0
expect_no_stdout
expect_no_stderr

# ---- 2 ----------------------------------------------------------------------
check "exit 2: usage errors"
expect_error 2 '' "$EVCTL"
expect_error 2 'bogus' "$EVCTL" bogus
expect_error 2 '' "$EVCTL" set
expect_error 2 '' "$EVCTL" wait
expect_error 2 '' "$EVCTL" fail f0
expect_error 2 '' "$EVCTL" set e1 --no-such-option
expect_error 2 '' "$EVCTL" wait e1 --timeout
expect_error 2 '' "$EVCTL" set e1 --once --auto
expect_error 2 '' "$EVCTL" wait --any
expect_error 2 '' "$EVCTL" watch --count abc
expect_error 2 "needs a subcommand" "$EVCTL" sem
expect_error 2 "--max" "$EVCTL" sem create s2 --max +1
expect_error 2 "--value" "$EVCTL" set e1 --value a --value-file /dev/null

check "exit 2: bad names, with the bad character or length named"
expect_error 2 "(['\"]/['\"]|character|char |offset|position)" "$EVCTL" set 'a/b'
expect_error 2 "(['\"]/['\"]|character|char |offset|position)" "$EVCTL" wait 'a/b' --timeout 0
expect_error 2 "(['\"]/['\"]|character|char |offset|position)" "$EVCTL" create 'a/b'
expect_error 2 "(['\"]\\.['\"]|start|begin|first|lead)" "$EVCTL" set '.x'
expect_error 2 "(['\"]-['\"]|start|begin|first|lead)" "$EVCTL" set -- '-x'
expect_error 2 "(['\"] ['\"]|character|char |space|offset)" "$EVCTL" set 'a b'
expect_error 2 "(character|char |byte|offset)" "$EVCTL" set 'caf'$'\xc3\xa9'
expect_error 2 "(64|65|long|length)" "$EVCTL" set "${name64}b"
expect_error 2 "(empty|length|short|1)" "$EVCTL" set ''
expect_error 2 "(['\"]/['\"]|character|char |offset|position)" "$EVCTL" is-set 'x/../etc'

check "exit 2: bad durations"
expect_error 2 '5x' "$EVCTL" wait e1 --timeout 5x
expect_error 2 '' "$EVCTL" wait e1 --timeout -1
expect_error 2 '' "$EVCTL" wait e1 --timeout ''
expect_error 2 '' "$EVCTL" wait e1 --timeout 1s --progress 0x
expect_error 2 '' "$EVCTL" wait e1 --timeout ms

check "exit 2: a value of 4097 bytes (4096 is fine)"
v4096=$(rand_str 4096)
expect_exit 0 "$EVCTL" set big --value "$v4096"
expect_exit 0 "$EVCTL" wait big --timeout 0
expect_stdout "$v4096"
expect_error 2 '(4096|4097|long|large|size|big)' "$EVCTL" set big2 --value "${v4096}x"
expect_error 2 '(4096|4097|long|large|size|big)' "$EVCTL" fail big2 "${v4096}x"

# ---- 3 ----------------------------------------------------------------------
check "exit 3: wait on a failed event, message on stderr"
expect_exit 0 "$EVCTL" fail f1 "boom went the disk"
expect_error 3 '^evctl: f1 failed: boom went the disk$' "$EVCTL" wait f1 --timeout 0
expect_no_stdout
expect_error 3 '^evctl: f1 failed: boom went the disk$' "$EVCTL" wait f1 --timeout 1s
expect_error 3 '^evctl: f1 failed: boom went the disk$' "$EVCTL" wait f1

# ---- 4 ----------------------------------------------------------------------
check "exit 4: --once set twice"
expect_exit 0 "$EVCTL" set o1 --once --value first
expect_error 4 'o1' "$EVCTL" set o1 --once --value second
expect_exit 0 "$EVCTL" wait o1 --timeout 0
expect_stdout first
check "exit 4: create an existing object (--exist-ok: 0 for the same kind, 4 for another)"
expect_exit 0 "$EVCTL" create c1
expect_error 4 'c1' "$EVCTL" create c1
expect_exit 0 "$EVCTL" create c1 --exist-ok
expect_error 4 'c1' "$EVCTL" create c1 --auto --exist-ok
check "exit 4: delete a missing object"
expect_error 4 'nosuch.*(no such|not exist|missing)|(no such|not exist|missing).*nosuch' "$EVCTL" delete nosuch
check "exit 4: kind mismatch (auto event waited as --once, set as --once)"
expect_exit 0 "$EVCTL" create au --auto
expect_error 4 'au' "$EVCTL" wait au --once --timeout 0
expect_error 4 'au' "$EVCTL" set au --once
check "exit 4: wait --all over an auto event"
expect_exit 0 "$EVCTL" set e1
expect_error 4 'au' "$EVCTL" wait --all e1 au --timeout 0

# ---- 5 ----------------------------------------------------------------------
check "exit 5: no daemon and EVD_NO_AUTOSTART=1 (fresh runtime dir)"
fresh=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-fresh.XXXXXX")
_DIRS+=("$fresh")
for cmd in "set x" "wait x --timeout 0" "create x" "list" "delete x"; do
        # shellcheck disable=SC2086
        expect_error 5 '' env EVD_RUNTIME_DIR="$fresh" EVD_NO_AUTOSTART=1 "$EVCTL" $cmd
done
[[ ! -e $fresh/evd.sock ]] || fail "a daemon was started despite EVD_NO_AUTOSTART=1"
[[ -z $(daemon_pids_for "$fresh") ]] || fail "a daemon runs for $fresh despite EVD_NO_AUTOSTART=1"

# ---- 6 ----------------------------------------------------------------------
if ((EUID != 0)); then
        say "skip sub-check: exit 6 needs root (to run evctl as another user)"
elif ! command -v setpriv >/dev/null; then
        say "skip sub-check: exit 6 needs setpriv"
else
        asnobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
        run "${asnobody[@]}" "$EVCTL" --version
        if ((LAST_RC != 0)); then
                say "skip sub-check: user nobody cannot run $EVCTL (exit $LAST_RC)"
        else
                check "exit 6: another user against a root-owned 0700 runtime dir"
                chmod 0700 "$EVD_DIR"
                expect_error 6 '' "${asnobody[@]}" env EVD_NO_AUTOSTART=1 "$EVCTL" set e1
                expect_error 6 '' "${asnobody[@]}" env EVD_NO_AUTOSTART=1 "$EVCTL" list
                check "exit 6: same, with autostart allowed (permission is not 'no daemon')"
                expect_error 6 '' "${asnobody[@]}" "$EVCTL" set e1
                sockmode=$(stat -c %a "$EVD_DIR/evd.sock")
                if ((8#$sockmode & 8#002)); then
                        say "skip sub-check: socket is world-writable (mode $sockmode)"
                else
                        check "exit 6: another user, runtime dir 0711, socket mode $sockmode"
                        chmod 0711 "$EVD_DIR"
                        expect_error 6 '' "${asnobody[@]}" env EVD_NO_AUTOSTART=1 "$EVCTL" set e1
                        chmod 0700 "$EVD_DIR"
                fi
                alive "$EVD_PID" || fail "evd died"
        fi
fi

# ---- 8 ----------------------------------------------------------------------
check "exit 8: standard output cannot be written (full disk, closed)"
expect_exit 0 "$EVCTL" set e8 --value v8
for cmd in "wait e8" "list" "show e8 --json" "--help" "--version"; do
        rc=0
        # shellcheck disable=SC2086
        timeout -k 2 "$T_CALL" "$EVCTL" $cmd >/dev/full 2>"$LAST_ERR_F" </dev/null || rc=$?
        ((rc == 8)) || fail "evctl $cmd >/dev/full: expected exit 8, got $rc: $(cat "$LAST_ERR_F")"
        expect_one_error_line
        expect_stderr_match 'standard output: No space left on device'
        rc=0
        # shellcheck disable=SC2086
        timeout -k 2 "$T_CALL" "$EVCTL" $cmd >&- 2>"$LAST_ERR_F" </dev/null || rc=$?
        ((rc == 8)) || fail "evctl $cmd >&-: expected exit 8, got $rc: $(cat "$LAST_ERR_F")"
        expect_one_error_line
done

# ---- --help / --version ------------------------------------------------------
check "--help on every subcommand exits 0 and prints usage"
for sub in set clear reset wait is-set fail create delete list show watch; do
        expect_exit 0 "$EVCTL" "$sub" --help
        grep -qi 'usage' "$LAST_OUT_F" || fail "'evctl $sub --help' prints no usage on stdout
$(_show_last)"
done
expect_exit 0 "$EVCTL" --help
grep -qi 'usage' "$LAST_OUT_F" || fail "'evctl --help' prints no usage on stdout"
grep -qi 'exit' "$LAST_OUT_F" || fail "'evctl --help' does not document the exit codes"
check "--version exits 0 and prints a version"
expect_exit 0 "$EVCTL" --version
[[ -s $LAST_OUT_F ]] || fail "evctl --version printed nothing"
expect_exit 0 "$EVD" --version
[[ -s $LAST_OUT_F ]] || fail "evd --version printed nothing"
expect_exit 0 "$EVD" --help
grep -qi 'usage' "$LAST_OUT_F" || fail "'evd --help' prints no usage on stdout"

# ---- 7 ----------------------------------------------------------------------
check "exit 7: namespace full (evd --capacity 4 --max-capacity 8)"
alive "$EVD_PID" || fail "evd died"
evd_setup --capacity 4 --max-capacity 8
full=0
made=0
for i in $(seq 1 20); do
        run "$EVCTL" create "n$i"
        if ((LAST_RC == 0)); then
                made=$i
                continue
        fi
        ((LAST_RC == 7)) || fail "create n$i: expected 0 or 7, got $LAST_RC
$(_show_last)"
        expect_one_error_line
        expect_stderr_match "n$i"
        full=$i
        break
done
((full > 0)) || fail "20 creates in a namespace of capacity 8 never gave exit 7"
((made == 8)) || fail "$made objects fitted in a namespace that grows from 4 to 8"
say "namespace full after $made objects"
check "exit 7: auto-create by wait/set in a full namespace"
expect_error 7 'fresh' "$EVCTL" wait fresh --timeout 0
expect_error 7 'fresh2' "$EVCTL" set fresh2
check "a full namespace disturbs nothing else"
expect_exit 0 "$EVCTL" set n1 --value still-ok
expect_exit 0 "$EVCTL" wait n1 --timeout 0
expect_stdout still-ok
expect_exit 0 "$EVCTL" list
expect_stdout_match '(^|[[:space:]])n1[[:space:]]'
expect_exit 0 "$EVCTL" delete n1
expect_exit 0 "$EVCTL" create "n$full"
alive "$EVD_PID" || fail "evd died"
exit 0
