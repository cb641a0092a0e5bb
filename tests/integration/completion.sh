#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# completion.sh - the shell completions of completions/: bash loads its
# script (complete -p evctl) and completes commands, subcommands, options,
# --output's columns and object names of the right type from a real daemon,
# in the namespace --runtime-dir names; pressing TAB never starts a daemon.
# zsh and fish parse their scripts (-n) and, when installed, complete
# object names too.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${SOURCE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
comp=$SOURCE_ROOT/completions
bin=$_SCRATCH/bin
mkdir -p "$bin"
ln -s "$EVCTL" "$bin/evctl"

evd_setup
expect_exit 0 "$EVCTL" set redis-ready --value 127.0.0.1:6379
expect_exit 0 "$EVCTL" create redis-failover-ready
long=$(printf 'r%.0s' {1..64})
expect_exit 0 "$EVCTL" create "$long"
expect_exit 0 "$EVCTL" sem create builds --max 4
expect_exit 0 "$EVCTL" sem create bulk --max 2
expect_exit 0 "$EVCTL" lock acquire deploy --owner $$
expect_exit 0 "$EVCTL" lock release deploy --owner $$

# comp_bash WORDS...: what bash's completion offers for the last of WORDS
# (the word being typed), sorted, one per line; in a clean bash with only
# our script loaded (and bash-completion when BASH_COMPLETION=1).
comp_bash() {
        env PATH="$bin:$PATH" COMP_SRC="$comp/evctl.bash" \
                timeout -k 2 "$T_CALL" bash --norc --noprofile -c '
                set -u
                if [[ ${BASH_COMPLETION:-} == 1 ]]; then
                        . /usr/share/bash-completion/bash_completion
                fi
                . "$COMP_SRC"
                COMP_WORDS=("$@")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                COMP_LINE="$*"
                COMP_POINT=${#COMP_LINE}
                COMPREPLY=()
                prev=
                ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
                _evctl evctl "${COMP_WORDS[COMP_CWORD]}" "$prev" 2>/dev/null
                printf "%s\n" "${COMPREPLY[@]}" | sort -u | sed "/^$/d"' _ "$@" </dev/null
}

# expect_comp WANT WORDS...: bash completes WORDS to exactly WANT (a
# space-separated list, in any order).
expect_comp() {
        local want got
        want=$(tr ' ' '\n' <<<"$1" | sort -u | sed '/^$/d')
        shift
        got=$(comp_bash "$@") || fail "bash completion of '$*' failed"
        [[ $got == "$want" ]] || fail "completing '$*': got
$got
want
$want"
}

check "bash: the script registers _evctl for evctl"
run bash --norc --noprofile -c '. "$1" && complete -p evctl' _ "$comp/evctl.bash"
[[ $LAST_RC == 0 ]] || fail "sourcing the bash completion failed
$(_show_last)"
expect_stdout "complete -F _evctl evctl"

check "bash: object names from the running daemon, of the type the command works on"
expect_comp "redis-ready redis-failover-ready $long" evctl wait ""
expect_comp "redis-ready redis-failover-ready $long" evctl wait r
expect_comp "redis-ready" evctl set redis-r
expect_comp "builds bulk" evctl sem acquire ""
expect_comp "builds" evctl sem release bui
expect_comp "deploy" evctl lock acquire ""
expect_comp "builds bulk deploy redis-ready redis-failover-ready $long" evctl show ""
expect_comp "redis-ready redis-failover-ready $long" evctl wait --any redis-ready ""
expect_comp "redis-ready redis-failover-ready $long" evctl wait --timeout 5s ""
expect_comp "" evctl fail redis-ready ""
expect_comp "" evctl create ""

check "bash: names come from the namespace --runtime-dir names (before or after the command)"
other=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-other.XXXXXX")
_DIRS+=("$other")
EVD_RUNTIME_DIR=$other expect_exit 0 "$EVCTL" create elsewhere
expect_comp "elsewhere" evctl --runtime-dir "$other" wait ""
expect_comp "elsewhere" evctl wait --runtime-dir "$other" ""

check "bash: TAB never starts a daemon"
idle=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-idle.XXXXXX")
_DIRS+=("$idle")
expect_comp "" evctl --runtime-dir "$idle" wait ""
[[ ! -e $idle/evd.sock && ! -e $idle/evd.pid && ! -e $idle/evd.segment ]] ||
        fail "completing a name started a daemon in $idle: $(ls "$idle")"

check "bash: commands, subcommands and each command's options (from its --help)"
expect_comp "set show sem" evctl s
expect_comp "create acquire release value run" evctl sem ""
expect_comp "wait abort reset" evctl barrier ""
expect_comp "--runtime-dir --system --user --help --version" evctl -
expect_comp "--no-legend --no-headings --output --raw --json --runtime-dir --help" evctl list --
expect_comp "--timeout" evctl wait --ti
expect_comp "--max --exist-ok --help --initial --runtime-dir --unbounded" evctl sem create builds --
expect_comp "--parties --progress" evctl barrier wait b --p

check "bash: --output's columns, after a comma and after +, in the case typed"
expect_comp "NAME" evctl list --output N
expect_comp "name" evctl list --output n
expect_comp "name,STATE name,SETS" evctl list --output name,S
expect_comp "+changed" evctl list --output +c

check "bash: sem run and lock run complete the command to run after NAME"
expect_comp "sleep" evctl sem run builds slee
expect_comp "sleep" evctl lock run deploy -- slee
expect_comp "--timeout" evctl sem run builds --tim
if [[ -r /usr/share/bash-completion/bash_completion ]]; then
        # With bash-completion, the command's own completion takes over.
        got=$(BASH_COMPLETION=1 comp_bash evctl sem run builds ls --almost-al)
        [[ $got == --almost-all ]] || fail "evctl sem run builds ls --almost-al: got '$got'"
else
        say "note: bash-completion is not installed; ls's own completion not tried"
fi

check "zsh: the script parses, and completes commands and names"
if command -v zsh >/dev/null; then
        run zsh -n "$comp/_evctl"
        [[ $LAST_RC == 0 ]] || fail "zsh -n _evctl
$(_show_last)"
        # Outside the completion system: compadd and friends print what
        # they are given.  (Under tools/test.sh --sanitize, LeakSanitizer's
        # stop-the-world now and then spins for good at the exit of an evctl
        # that zsh runs in a pipeline inside $(...), about one run in ten;
        # the same evctl calls are leak-checked in the bash part above.)
        run env PATH="$bin:$PATH" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" zsh -fc '
                compadd() {
                        while [[ $1 == -* && $1 != -- ]]; do
                                [[ $1 == (-M|-S|-P) ]] && shift
                                shift
                        done
                        [[ $1 == -- ]] && shift
                        print -rl -- "$@"
                }
                compset() { :; }
                _message() { :; }
                words=(evctl); CURRENT=1
                source "$1" >/dev/null
                words=(evctl sem acquire ""); CURRENT=4; _evctl
                words=(evctl wait ""); CURRENT=3; _evctl
                words=(evctl ""); CURRENT=2; _evctl' _ "$comp/_evctl"
        [[ $LAST_RC == 0 ]] || fail "zsh completion
$(_show_last)"
        for w in builds bulk redis-ready redis-failover-ready "$long" barrier list; do
                grep -qx -- "$w" "$LAST_OUT_F" || fail "zsh did not offer $w
$(_show_last)"
        done
        grep -qx deploy "$LAST_OUT_F" && fail "zsh offered the lock deploy to sem acquire or wait"
else
        say "note: zsh is not installed; its completion not tried"
fi

check "fish: the script parses, and completes commands and names"
if command -v fish >/dev/null; then
        run fish -n "$comp/evctl.fish"
        [[ $LAST_RC == 0 ]] || fail "fish -n evctl.fish
$(_show_last)"
        run env PATH="$bin:$PATH" HOME="$_SCRATCH" XDG_CONFIG_HOME="$_SCRATCH/config" \
                ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
                XDG_DATA_HOME="$_SCRATCH/data" fish --no-config -c '
                source $argv[1]
                complete -C "evctl sem acquire "
                complete -C "evctl wait r"
                complete -C "evctl list --output +s"
                complete -C "evctl sem "' "$comp/evctl.fish"
        [[ $LAST_RC == 0 ]] || fail "fish completion
$(_show_last)"
        for w in builds bulk redis-ready redis-failover-ready +SETS +STATE create run; do
                cut -f1 "$LAST_OUT_F" | grep -x -- "$w" >/dev/null || fail "fish did not offer $w
$(_show_last)"
        done
        cut -f1 "$LAST_OUT_F" | grep -x deploy >/dev/null && fail "fish offered the lock deploy to sem acquire or wait"
else
        say "note: fish is not installed; its completion not tried"
fi

say "ok"
