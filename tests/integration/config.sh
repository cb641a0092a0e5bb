#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# config.sh - evd's configuration file (evd(8), CONFIGURATION): every
# mistake in it (an unknown or forbidden name, a line that is not
# "name = value", a bad value, a name given twice, options that need each
# other, a missing, unreadable or world-writable file) stops evd with exit
# 2 and one line naming the file and line, before anything is made; the
# command line overrides the file; which file each namespace reads by
# default: the user instance's $XDG_CONFIG_HOME/evd/evd.conf (else
# ~/.config/...), whoever starts its daemon (evd --user, a --runtime-dir
# naming the instance's directory, a client's autostart), the system
# instance's SYSCONFDIR/evd/evd.conf (run for real as root in a private
# mount namespace, where one can be had), no file for other directories;
# --no-config.  The cluster settings from a file, against a real etcd, are
# cluster-config.sh's.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${EVD_SYSCONFDIR:?meson passes EVD_SYSCONFDIR, the sysconfdir of the build}"

C=$_SCRATCH/conf
mkdir -p "$C"
evd_mkdir
dir=$EVD_DIR

# conf NAME LINE...: a file C/NAME with these lines; its path in CONF.
conf() {
        CONF=$C/$1
        shift
        printf '%s\n' "$@" >"$CONF"
}
# refused REGEX EVD-ARGS...: evd exits 2 with exactly one line on stderr,
# "evd: " then matching REGEX, and makes nothing in the runtime directory.
refused() {
        local re=$1
        shift
        expect_exit 2 "$EVD" --runtime-dir "$dir" "$@"
        [[ $(nlines "$LAST_ERR_F") == 1 ]] || fail "expected one line on stderr
$(_show_last)"
        expect_stderr_match "^evd: $re"
        [[ -z $(ls -A "$dir") ]] || fail "evd made files although its configuration was refused: $(ls -A "$dir")"
}
# ready_capacity LOG: the capacity of the last "ready" line of LOG, once
# there is one (evd_start may return when the socket appears, before it).
ready_capacity() {
        wait_until "grep -q 'ready, serving' '$1'" || return 0
        grep -o 'ready, serving .*capacity [0-9]*' "$1" | tail -n 1 | grep -o '[0-9]*$'
}

check "each mistake in the file: exit 2, one line naming file:line and the cause, nothing made"
conf unknown '# a comment' '' 'capacity = 64' 'bogus = 1'
refused "$CONF:4: unknown option 'bogus'" --config "$CONF"
conf forbidden 'runtime-dir = /tmp'
refused "$CONF:1: runtime-dir cannot be set in a configuration file" --config "$CONF"
conf forbidden2 'ephemeral = yes'
refused "$CONF:1: ephemeral cannot be set in a configuration file" --config "$CONF"
conf noeq '' 'capacity 64'
refused "$CONF:2: expected 'name = value', got 'capacity 64'" --config "$CONF"
conf noname '= 64'
refused "$CONF:1: expected 'name = value'" --config "$CONF"
conf badcap 'capacity = 0'
refused "$CONF:1: invalid capacity '0'" --config "$CONF"
conf badmax 'max-capacity = lots'
refused "$CONF:1: invalid maximum capacity 'lots'" --config "$CONF"
conf inline 'capacity = 64 # small'
refused "$CONF:1: capacity takes one word, not '64 # small' \(a comment takes a line of its own\)" --config "$CONF"
conf badttl 'etcd = http://127.0.0.1:1' 'lease-ttl = 1500ms'
refused "$CONF:2: lease-ttl takes whole seconds from 2s to 1h, not 1500ms" --config "$CONF"
conf badttl2 'etcd = http://127.0.0.1:1' 'lease-ttl = soon'
refused "$CONF:2: lease-ttl soon: " --config "$CONF"
conf badverbose 'verbose = maybe'
refused "$CONF:1: verbose takes yes or no, not 'maybe'" --config "$CONF"
conf empty 'etcd ='
refused "$CONF:1: etcd needs a value" --config "$CONF"
conf twice '' 'etcd = http://127.0.0.1:1' 'capacity = 64' 'etcd = http://127.0.0.1:2'
refused "$CONF:4: etcd given twice \(first on line 2\)" --config "$CONF"
conf longprefix 'etcd = http://127.0.0.1:1' "etcd-prefix = $(printf 'p%.0s' $(seq 1 201))"
refused "$CONF:2: etcd-prefix takes 1 to 200 bytes" --config "$CONF"
printf 'capacity = 6\0\n' >"$C/nul"
refused "$C/nul:1: a NUL byte" --config "$C/nul"
{
        echo 'verbose = no'
        printf 'host-id = %s\n' "$(printf 'h%.0s' $(seq 1 5000))"
} >"$C/long"
refused "$C/long:2: a line longer than 4096 bytes" --config "$C/long"
check "... and settings that need each other, named where the file sets them"
conf noetcd 'capacity = 64' 'host-id = h1'
refused "$CONF:2: --etcd-prefix, --host-id, --lease-ttl and the --etcd-\* TLS options go with --etcd" --config "$CONF"
conf certonly 'etcd = https://127.0.0.1:1' 'etcd-cert = /etc/evd/my cert.pem'
refused "$CONF:2: --etcd-cert and --etcd-key go together" --config "$CONF"
conf capmax 'capacity = 128' 'max-capacity = 64'
refused "$CONF:1: --capacity 128 is more than --max-capacity 64" --config "$CONF"
check "... and files that cannot be used: missing, a directory, writable by others"
refused "$C/missing.conf: cannot read the configuration file: No such file or directory" --config "$C/missing.conf"
refused "$C: not a regular file" --config "$C"
conf ww 'capacity = 64'
chmod 0666 "$CONF"
refused "$CONF: writable by other users \(mode 0666\); refusing it" --config "$CONF"
check "... and options that exclude each other"
conf ok 'capacity = 64'
refused "--config and --no-config exclude each other" --config "$CONF" --no-config
expect_exit 2 "$EVD" --remove --runtime-dir "$dir" --config "$CONF"
expect_stderr_match "^evd: --remove takes only"
check "a bad value on the command line is refused as before, and before the file"
refused "invalid capacity 'x'" --capacity x --config "$C/unknown"

check "precedence: the file's capacity, unless the command line gives one"
conf cap 'capacity = 64' 'verbose = no'
evd_start --ephemeral --config "$CONF"
[[ $(ready_capacity "$dir/evd.log") == 64 ]] || fail "the daemon did not take capacity 64 from the file: $(tail -n 3 "$dir/evd.log")"
evd_stop
evd_mkdir
dir=$EVD_DIR
evd_start --ephemeral --config "$CONF" --capacity 128
[[ $(ready_capacity "$dir/evd.log") == 128 ]] || fail "--capacity 128 did not override the file's 64: $(tail -n 3 "$dir/evd.log")"
evd_stop
check "... and --check-config says which value is in effect and where it comes from"
expect_exit 0 "$EVD" --runtime-dir "$dir" --config "$CONF" --capacity 128 -v --check-config
expect_stdout_match "^# configuration file: $CONF\$"
expect_stdout_match '^capacity = 128  # command line$'
expect_stdout_match '^verbose = yes  # command line$'
conf cluster 'etcd = http://127.0.0.1:1' 'etcd-prefix = p/'
expect_exit 0 "$EVD" --runtime-dir "$dir" --config "$CONF" --check-config
expect_stdout_match "^etcd = http://127.0.0.1:1  # $CONF:1\$"
expect_stdout_match "^etcd-prefix = p/  # $CONF:2\$"
expect_stdout_match '^host-id = .*  # default: the host name$'

# The user instance: its runtime directory $X/evd, its configuration in $XC.
X=$(mktemp -d "/tmp/evd-it-${TEST_NAME}-xdg.XXXXXX")
_DIRS+=("$X/evd" "$X")
XC=$_SCRATCH/xdg-config
mkdir -p "$XC/evd"
printf 'capacity = 96\n' >"$XC/evd/evd.conf"
# "${user[@]}" CMD...: CMD as the user instance sees it ($EVD_RUNTIME_DIR unset).
user=(env -u EVD_RUNTIME_DIR XDG_RUNTIME_DIR="$X" XDG_CONFIG_HOME="$XC")

check "the user instance reads \$XDG_CONFIG_HOME/evd/evd.conf"
expect_exit 0 "${user[@]}" "$EVD" --user --check-config
expect_stdout_match "^# namespace: $X/evd, the user instance\$"
expect_stdout_match "^# configuration file: $XC/evd/evd.conf\$"
expect_stdout_match "^capacity = 96  # $XC/evd/evd.conf:1\$"
check "... else ~/.config/evd/evd.conf (a relative \$XDG_CONFIG_HOME is ignored, as XDG says)"
H=$_SCRATCH/home
mkdir -p "$H/.config/evd"
printf 'capacity = 97\n' >"$H/.config/evd/evd.conf"
expect_exit 0 env -u EVD_RUNTIME_DIR -u XDG_CONFIG_HOME XDG_RUNTIME_DIR="$X" HOME="$H" "$EVD" --user --check-config
expect_stdout_match "^capacity = 97  # $H/.config/evd/evd.conf:1\$"
expect_exit 0 env -u EVD_RUNTIME_DIR XDG_CONFIG_HOME=relative XDG_RUNTIME_DIR="$X" HOME="$H" "$EVD" --user --check-config
expect_stdout_match "^capacity = 97  # $H/.config/evd/evd.conf:1\$"
check "... and --no-config reads none"
expect_exit 0 "${user[@]}" "$EVD" --user --no-config --check-config
expect_stdout_match '^# no configuration file \(--no-config\)$'
! grep -q '^capacity' "$LAST_OUT_F" || fail "--no-config still read a file
$(_show_last)"

check "a daemon that evctl starts on demand for the user instance reads the user's file too"
expect_exit 0 "${user[@]}" "$EVCTL" --user set from-autostart
[[ -f $X/evd/evd.log ]] || fail "no daemon was started for $X/evd"
pid=$(first_daemon_pid "$X/evd")
[[ -n $pid ]] || fail "no daemon serves $X/evd"
note_segment_of "$pid" >/dev/null
[[ $(ready_capacity "$X/evd/evd.log") == 96 ]] ||
        fail "the autostarted daemon did not take capacity 96 from $XC/evd/evd.conf: $(cat "$X/evd/evd.log")"
kill -TERM "$pid"
wait_until "! alive $pid" || fail "the autostarted daemon did not stop"
check "... and a mistake in it stops that daemon (exit 2, file:line in its log); a missing file is no mistake"
printf 'capacity = 96\ncapacity = 95\n' >"$XC/evd/evd.conf"
expect_exit 2 "${user[@]}" "$EVD" --user
expect_stderr_match "^evd: $XC/evd/evd.conf:2: capacity given twice \(first on line 1\)\$"
rm "$XC/evd/evd.conf"
expect_exit 0 "${user[@]}" "$EVD" --user --check-config
expect_stdout_match "^# no configuration file \($XC/evd/evd.conf does not exist\)\$"

check "any other directory reads no file unless --config names one"
printf 'capacity = 96\n' >"$XC/evd/evd.conf"
expect_exit 0 env XDG_RUNTIME_DIR="$X" XDG_CONFIG_HOME="$XC" "$EVD" --runtime-dir "$dir" --check-config
expect_stdout_match "^# namespace: $dir, a namespace that reads a configuration file only with --config\$"
! grep -q '^capacity' "$LAST_OUT_F" || fail "a --runtime-dir namespace read the user's file
$(_show_last)"

check "the system instance reads $EVD_SYSCONFDIR/evd/evd.conf (--system, or a directory naming /run/evd)"
expect_exit 0 env -u EVD_RUNTIME_DIR "$EVD" --system --check-config
expect_stdout_match '^# namespace: /run/evd, the system instance$'
expect_stdout_match "^# (configuration file: |no configuration file \()$EVD_SYSCONFDIR/evd/evd.conf"
expect_exit 0 "$EVD" --runtime-dir /run/evd --check-config
expect_stdout_match '^# namespace: /run/evd, the system instance$'
if (($(id -u) == 0)); then
        check "... root with no options serves the system instance, and reads its file"
        expect_exit 0 env -u EVD_RUNTIME_DIR "$EVD" --check-config
        expect_stdout_match '^# namespace: /run/evd, the system instance$'
fi

# For real: evd --system in a private mount namespace, with tmpfs over
# SYSCONFDIR and /run, so that neither the host's files nor its system
# instance are touched.
if (($(id -u) == 0)) && command -v unshare >/dev/null && [[ -d $EVD_SYSCONFDIR ]] &&
        unshare --mount --propagation private true 2>/dev/null; then
        check "evd --system started in a private mount namespace takes its settings from $EVD_SYSCONFDIR/evd/evd.conf"
        slog=$_SCRATCH/system.log
        # shellcheck disable=SC2016 # expanded by the inner shell
        bg_start 240 unshare --mount --propagation private sh -c '
                mount -t tmpfs tmpfs "$1" && mount -t tmpfs tmpfs /run &&
                mkdir "$1/evd" && printf "capacity = 48\n" >"$1/evd/evd.conf" &&
                exec "$2" --system --ephemeral' sh "$EVD_SYSCONFDIR" "$EVD"
        sysd=$BG_PID
        wait_until "grep -q 'ready, serving' '$(bg_err "$sysd")' || ! alive $sysd" ||
                fail "evd --system never became ready: $(cat "$(bg_err "$sysd")")"
        alive "$sysd" || fail "evd --system exited: $(cat "$(bg_err "$sysd")")"
        cp "$(bg_err "$sysd")" "$slog"
        [[ $(ready_capacity "$slog") == 48 ]] ||
                fail "evd --system did not take capacity 48 from its file: $(cat "$slog")"
        grep -q 'serving /run/evd ' "$slog" || fail "that was not the system instance: $(cat "$slog")"
        evdpid=$(bg_child "$sysd")
        note_segment_of "$evdpid" >/dev/null
        kill -TERM "$evdpid"
        bg_expect "$sysd" 0
else
        say "note: not root, or no private mount namespace here: the system instance's file was checked by --check-config only"
fi
exit 0
