#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# namespace.sh - where a namespace lives, and which directories are refused.
# A named runtime directory (--runtime-dir, EVD_RUNTIME_DIR) that does not
# exist is exit 5 with its name, for evctl and for evd, and nothing is made
# (a typo must not start a namespace of its own); only a default directory
# ($XDG_RUNTIME_DIR/evd) is made.  --system and --user beat EVD_RUNTIME_DIR
# and exclude each other and --runtime-dir.  A directory that others may
# write is refused before anything is made in it, and autostart never
# follows a symlinked evd.log.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evd_mkdir
base=$EVD_DIR # exists, private, empty
missing=$base/typo/dir

check "evctl on a named runtime directory that does not exist: exit 5 naming it, nothing made, no daemon"
expect_error 5 "$missing: no such runtime directory" "$EVCTL" --runtime-dir "$missing" list
expect_error 5 "$missing" env EVD_RUNTIME_DIR="$missing" "$EVCTL" set x
expect_error 5 "$missing" env EVD_RUNTIME_DIR="$missing" EVD_NO_AUTOSTART=1 "$EVCTL" wait x --timeout 0
expect_error 5 "$missing" "$EVCTL" create x --runtime-dir "$missing"
[[ ! -e $base/typo ]] || fail "evctl made $base/typo for a runtime directory that did not exist"
[[ -z $(daemon_pids_for "$missing") ]] || fail "a daemon was started for $missing"

check "evd --runtime-dir on a directory that does not exist: exit 5 naming it, nothing made"
expect_exit 5 "$EVD" --runtime-dir "$missing"
expect_stderr_match "runtime directory $missing does not exist"
[[ ! -e $base/typo ]] || fail "evd made $base/typo"

check "--system and --user exclude each other, and --runtime-dir too (exit 2)"
expect_error 2 'exclude each other' "$EVCTL" --system --user list
expect_error 2 'exclude each other' "$EVCTL" --user list --runtime-dir "$base"
expect_exit 2 "$EVD" --system --user
expect_exit 2 "$EVD" --user --runtime-dir "$base"
expect_stderr_match 'exclude each other'

check "--user beats EVD_RUNTIME_DIR"
expect_error 5 'XDG_RUNTIME_DIR is not set' env -u XDG_RUNTIME_DIR EVD_RUNTIME_DIR="$base" "$EVCTL" --user set x
xdg=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-xdg.XXXXXX")
_DIRS+=("$xdg/evd" "$xdg")
expect_exit 0 env XDG_RUNTIME_DIR="$xdg" EVD_RUNTIME_DIR="$base" "$EVCTL" --user set x --value user
pid=$(first_daemon_pid "$xdg/evd")
[[ -n $pid ]] || fail "no daemon serves $xdg/evd"
note_segment_of "$pid" >/dev/null
[[ ! -e $base/evd.sock ]] || fail "--user used EVD_RUNTIME_DIR ($base)"
check "the default directory \$XDG_RUNTIME_DIR/evd is made, 0700, when missing"
[[ -d $xdg/evd ]] || fail "$xdg/evd was not made"
[[ $(stat -c %a "$xdg/evd") == 700 ]] || fail "$xdg/evd has mode $(stat -c %a "$xdg/evd"), want 700"
expect_exit 0 env XDG_RUNTIME_DIR="$xdg" "$EVCTL" --user wait x --timeout 0
expect_stdout user

check "--system beats EVD_RUNTIME_DIR"
# Without a daemon for /run/evd (and not allowed to start one) this is exit
# 5 naming /run/evd; a system instance that happens to run answers 0.
run env EVD_NO_AUTOSTART=1 EVD_RUNTIME_DIR="$base" "$EVCTL" --system list
if ((LAST_RC == 5)); then
        expect_stderr_match '/run/evd'
elif ((LAST_RC != 0)); then
        fail "evctl --system list exited $LAST_RC
$(_show_last)"
fi
[[ ! -e $base/evd.sock ]] || fail "--system used EVD_RUNTIME_DIR ($base)"

check "a runtime directory writable by other users is refused before anything is made in it"
ww=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-ww.XXXXXX")
_DIRS+=("$ww")
chmod 1777 "$ww"
expect_error 5 "$ww is writable by other users \(mode 1777\)" env EVD_RUNTIME_DIR="$ww" "$EVCTL" set x
[[ -z $(ls -A "$ww") ]] || fail "evctl made files in the world-writable $ww: $(ls -A "$ww")"
[[ -z $(daemon_pids_for "$ww") ]] || fail "a daemon was started for the world-writable $ww"
expect_exit 1 "$EVD" --runtime-dir "$ww"
expect_stderr_match "refusing to serve $ww: .*writable by other users"
[[ -z $(ls -A "$ww") ]] || fail "evd made files in the world-writable $ww: $(ls -A "$ww")"
check "... and one writable by its group as well"
chmod 0770 "$ww"
expect_error 5 "writable by its group" env EVD_RUNTIME_DIR="$ww" "$EVCTL" set x
expect_exit 1 "$EVD" --runtime-dir "$ww"
expect_stderr_match "writable by its group"
[[ -z $(ls -A "$ww") ]] || fail "files were made in the group-writable $ww: $(ls -A "$ww")"

if ((EUID == 0)) && id nobody >/dev/null 2>&1; then
        check "no daemon is started in a runtime directory that belongs to another user; the message says whose"
        other=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-other.XXXXXX")
        _DIRS+=("$other")
        chown nobody "$other"
        expect_error 5 "no daemon serves $other, and only its owner \(uid $(id -u nobody)\) may start one" \
                env EVD_RUNTIME_DIR="$other" "$EVCTL" set x
        [[ -z $(ls -A "$other") ]] || fail "files were made in $other: $(ls -A "$other")"
        expect_exit 1 "$EVD" --runtime-dir "$other"
        expect_stderr_match "belongs to uid $(id -u nobody)"
fi

# autostart_with_log_symlink TARGET: a fresh private namespace whose evd.log
# is a symlink to TARGET; the first evctl call must start a daemon that
# works, without going through the symlink.
autostart_with_log_symlink() {
        evd_mkdir
        ln -s "$1" "$EVD_DIR/evd.log"
        expect_exit 0 "$EVCTL" set x --value through
        local p
        p=$(first_daemon_pid "$EVD_DIR")
        [[ -n $p ]] || fail "no daemon was started"
        note_segment_of "$p" >/dev/null
        expect_exit 0 "$EVCTL" wait x --timeout 0
        expect_stdout through
        [[ -L $EVD_DIR/evd.log ]] || fail "evd.log is no longer the symlink"
}

check "autostart does not follow a dangling evd.log symlink (its target is not created)"
autostart_with_log_symlink "$_SCRATCH/victim-new"
[[ ! -e $_SCRATCH/victim-new ]] || fail "autostart created the symlink's target: $(head -c 300 "$_SCRATCH/victim-new")"

check "autostart does not write through an evd.log symlink to an existing file"
printf 'precious\n' >"$_SCRATCH/victim-old"
autostart_with_log_symlink "$_SCRATCH/victim-old"
[[ $(cat "$_SCRATCH/victim-old") == precious ]] ||
        fail "the daemon's log went into the symlink's target: $(head -c 300 "$_SCRATCH/victim-old")"
exit 0
