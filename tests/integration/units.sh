#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# units.sh - every unit file evd ships passes `systemd-analyze verify`: the
# system and user evd.service and evd.socket as the build generated them
# (the test-* copies, whose ExecStart= points at the built evd, since verify
# insists that the program exists), and the examples, with their bare
# "evctl" pointed at the built one; the Redis drop-in on top of Debian's
# redis-server.service.  No systemd runs here: verify needs none, only a
# runtime directory for --user.  Verify only warns (exit 0) about unknown
# keys and bad values, so any line it prints about our files fails the test,
# and a canary (a bogus key added on purpose) proves each run would see one.
#
# The cluster drop-ins (examples/evd.service.d/cluster.conf and its user
# twin) pass verify on top of the units, and the system one opens exactly
# the network (PrivateNetwork=, AF_INET/AF_INET6) while IPAddressDeny=any
# and the rest stay, by `systemd-analyze security --offline`; the example
# evd.conf passes `evd --check-config`, as shipped and uncommented.
#
# Also: the system unit's hardening stays under an exposure of 2.0 in
# `systemd-analyze security --offline`; the installed units differ from the
# verified ones only in their paths; the Documentation= pages exist; and
# meson installs the units under the prefix, or not at all with
# -Dsystemd-units=disabled.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SOURCE_ROOT:=$here/../..}"
: "${BUILD_ROOT:?meson passes BUILD_ROOT}"
gen=$BUILD_ROOT/systemd
examples=$SOURCE_ROOT/systemd/examples
for f in "$gen/test-evd.service" "$gen/test-evd.socket" "$gen/user/test-evd.service" \
        "$gen/user/test-evd.socket"; do
        [[ -f $f ]] || fail "the build did not generate $f"
done

# with_built_evctl SRC DST: copy a unit, pointing a bare "evctl" that starts
# an Exec*= line at the built one.
with_built_evctl() {
        sed -E "s#^(Exec[A-Za-z]+=[-@:+!]*)evctl #\\1$EVCTL #" "$1" >"$2"
}

# verify MODE DIR UNIT...: systemd-analyze [--user] verify UNIT... in DIR.
# Fails on a non-zero exit and on any output line about our files; other
# lines (about the host's own units) are only shown.
verify() {
        local mode=$1 dir=$2
        shift 2
        local pre=(env) args=(verify --man=no)
        if [[ $mode == user ]]; then
                mkdir -p "$dir/.xdg"
                chmod 0700 "$dir/.xdg"
                pre=(env XDG_RUNTIME_DIR="$dir/.xdg")
                args=(--user "${args[@]}")
        fi
        VERIFY_RC=0
        (cd "$dir" && "${pre[@]}" timeout 300 systemd-analyze "${args[@]}" "$@") >"$dir/.out" 2>&1 ||
                VERIFY_RC=$?
        VERIFY_OUT=$(cat "$dir/.out")
}

expect_clean() {
        local mode=$1 dir=$2
        shift 2
        verify "$mode" "$dir" "$@"
        ((VERIFY_RC == 0)) || fail "systemd-analyze ${mode} verify $* exited $VERIFY_RC:
$VERIFY_OUT"
        local line bad=""
        while IFS= read -r line; do
                [[ -n $line ]] || continue
                if [[ $line == "$dir/redis-server.service:"* ]]; then
                        say "note (Debian's own unit): $line"
                elif [[ $line == *"$dir"* || $line == *evd* || $line == *worker* ]]; then
                        bad+="$line"$'\n'
                else
                        say "note: $line"
                fi
        done <<<"$VERIFY_OUT"
        [[ -z $bad ]] || fail "systemd-analyze ${mode} verify $* complains:
$bad"
}

# canary MODE DIR FILE UNIT...: with a bogus key appended to FILE, verify
# must name it (then FILE is restored).
canary() {
        local mode=$1 dir=$2 file=$3
        shift 3
        cp "$dir/$file" "$dir/.saved"
        printf 'EvdCanaryKey=1\n' >>"$dir/$file"
        verify "$mode" "$dir" "$@"
        mv "$dir/.saved" "$dir/$file"
        grep -q "EvdCanaryKey" <<<"$VERIFY_OUT" ||
                fail "systemd-analyze ${mode} verify did not notice a bogus key in $file (is it reading our files?):
$VERIFY_OUT"
}

# evd_units MODE SRC DIR: SRC's generated test-evd.service and
# test-evd.socket, as DIR's evd.service and evd.socket, pass verify.
evd_units() {
        local mode=$1 src=$2 dir=$3
        mkdir -p "$dir"
        cp "$src/test-evd.service" "$dir/evd.service"
        cp "$src/test-evd.socket" "$dir/evd.socket"
        expect_clean "$mode" "$dir" evd.service evd.socket
}

check "system units: evd.service and evd.socket pass systemd-analyze verify"
sys=$_SCRATCH/system
evd_units system "$gen" "$sys"
canary system "$sys" evd.service evd.service
canary system "$sys" evd.socket evd.socket

check "user units: evd.service and evd.socket pass systemd-analyze --user verify"
usr=$_SCRATCH/user
evd_units user "$gen/user" "$usr"
canary user "$usr" evd.socket evd.socket

check "examples: worker.service and evd-wait@.service pass verify"
for u in worker.service evd-wait@.service; do
        d=$_SCRATCH/ex-$u
        mkdir -p "$d"
        cp "$sys/evd.service" "$sys/evd.socket" "$d/"
        with_built_evctl "$examples/$u" "$d/$u"
        name=${u/@./@redis-ready.}
        expect_clean system "$d" "$name"
        canary system "$d" "$u" "$name"
done

check "examples: the Redis drop-in passes verify on top of Debian's redis-server.service"
base=""
for f in /lib/systemd/system/redis-server.service /usr/lib/systemd/system/redis-server.service; do
        [[ -f $f ]] && base=$f && break
done
if [[ -n $base ]]; then
        d=$_SCRATCH/ex-redis
        mkdir -p "$d/redis-server.service.d"
        cp "$base" "$sys/evd.service" "$sys/evd.socket" "$d/"
        with_built_evctl "$examples/redis-server.service.d/evd.conf" "$d/redis-server.service.d/evd.conf"
        expect_clean system "$d" redis-server.service
        canary system "$d" redis-server.service.d/evd.conf redis-server.service
else
        say "note: no redis-server.service installed; the drop-in is checked by redis-units.sh only"
fi

check "the cluster drop-in (examples/evd.service.d/cluster.conf) passes verify on top of evd.service"
d=$_SCRATCH/ex-cluster
mkdir -p "$d/evd.service.d"
cp "$sys/evd.service" "$sys/evd.socket" "$d/"
cp "$examples/evd.service.d/cluster.conf" "$d/evd.service.d/cluster.conf"
expect_clean system "$d" evd.service evd.socket
canary system "$d" evd.service.d/cluster.conf evd.service

check "the user cluster drop-in (examples/user/evd.service.d/cluster.conf) passes --user verify"
du=$_SCRATCH/ex-cluster-user
mkdir -p "$du/evd.service.d"
cp "$usr/evd.service" "$usr/evd.socket" "$du/"
cp "$examples/user/evd.service.d/cluster.conf" "$du/evd.service.d/cluster.conf"
expect_clean user "$du" evd.service evd.socket
canary user "$du" evd.service.d/cluster.conf evd.service

check "the example evd.conf is valid, commented out and with each of its settings uncommented"
conf=$SOURCE_ROOT/etc/evd.conf.example
expect_exit 0 "$EVD" --runtime-dir "$_SCRATCH" --config "$conf" --check-config
grep -q '^# configuration file: ' "$LAST_OUT_F" || fail "--check-config did not name the file:
$(_show_last)"
! grep -q '^[a-z]' "$LAST_OUT_F" || fail "the example sets something while all commented out:
$(_show_last)"
# The first "#name = value" line of each name, uncommented.
awk '/^#[a-z-]+ = / { n = $1; sub(/^#/, "", n); if (!(n in seen)) { seen[n] = 1; sub(/^#/, "") } } { print }' \
        "$conf" >"$_SCRATCH/evd.conf"
expect_exit 0 "$EVD" --runtime-dir "$_SCRATCH" --config "$_SCRATCH/evd.conf" --check-config
for k in capacity max-capacity group verbose etcd etcd-prefix host-id lease-ttl etcd-cacert etcd-cert etcd-key; do
        grep -q "^$k = .*# $_SCRATCH/evd.conf:[0-9]*\$" "$LAST_OUT_F" ||
                fail "the example's $k, uncommented, is not in effect:
$(_show_last)"
done

check "evd.service's sandbox: systemd-analyze security --offline rates it 2.0 or better"
if systemd-analyze --help 2>/dev/null | grep -- '--offline' >/dev/null; then
        T_CALL=300 run systemd-analyze security --offline=true --threshold=20 "$sys/evd.service"
        ((LAST_RC == 0)) || fail "exposure above 2.0:
$(tail -n 20 "$LAST_OUT_F")"
        say "$(grep -o 'Overall exposure level.*' "$LAST_OUT_F" || true)"
        # The settings the cluster drop-in lifts are in force without it...
        for want in '✓ PrivateNetwork=' '✓ RestrictAddressFamilies=~AF_(INET|INET6)' '✓ IPAddressDeny='; do
                grep -qF "$want" "$LAST_OUT_F" || fail "evd.service lacks $want:
$(cat "$LAST_OUT_F")"
        done
        check "with the cluster drop-in: the host's network and TCP, IPAddressDeny=any still in force, exposure 2.0 or better"
        T_CALL=300 run systemd-analyze security --offline=true --threshold=20 "$d/evd.service"
        ((LAST_RC == 0)) || fail "exposure with the cluster drop-in above 2.0:
$(tail -n 20 "$LAST_OUT_F")"
        say "$(grep -o 'Overall exposure level.*' "$LAST_OUT_F" || true)"
        for want in '✗ PrivateNetwork=' '✗ RestrictAddressFamilies=~AF_(INET|INET6)' '✓ IPAddressDeny=' \
                '✓ RestrictAddressFamilies=~AF_PACKET' '✓ RestrictAddressFamilies=~AF_NETLINK' \
                '✓ PrivateDevices=' '✓ ProtectSystem='; do
                grep -qF "$want" "$LAST_OUT_F" || fail "with the cluster drop-in, evd.service lacks $want:
$(cat "$LAST_OUT_F")"
        done
else
        say "note: this systemd-analyze has no --offline; skipped"
fi

check "the installed units differ from the verified ones only in their paths"
for u in evd.service evd.socket user/evd.service user/evd.socket; do
        inst=$gen/$u test=$gen/$(dirname "$u")/test-$(basename "$u")
        [[ -f $inst ]] || fail "$inst was not generated"
        diff <(grep -v '^Exec' "$inst") <(grep -v '^Exec' "$test") >/dev/null ||
                fail "$inst and $test differ outside their Exec lines"
        while IFS= read -r line; do
                [[ $line =~ ^Exec[A-Za-z]+=/[^\ ]*/evd(\ |$) ]] ||
                        fail "$inst: $line does not run an absolute .../evd"
        done < <(grep '^Exec' "$inst")
        ! grep -q '@[A-Z]*@' "$inst" || fail "$inst has unsubstituted @VARIABLES@"
done

check "every Documentation= page of the units is one evd ships"
for f in "$gen"/evd.service "$gen"/evd.socket "$gen"/user/evd.service "$gen"/user/evd.socket; do
        for page in $(sed -n 's/^Documentation=//p' "$f"); do
                [[ $page =~ ^man:([a-z]+)\(([0-9])\)$ ]] || fail "$f: unexpected Documentation=$page"
                [[ -f $SOURCE_ROOT/man/${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.scd ]] ||
                        fail "$f: Documentation=$page, but there is no man/${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.scd"
        done
done

check "meson installs the units under the prefix, and none with -Dsystemd-units=disabled"
if pkg-config --exists systemd && command -v meson >/dev/null; then
        prefix=$_SCRATCH/prefix
        # meson setup takes seconds, and minutes on a saturated machine:
        # its bound is a deadline for a hang only.
        T_CALL=300 run meson setup "$_SCRATCH/b-on" "$SOURCE_ROOT" --prefix="$prefix" -Dtests=false -Dman=disabled \
                -Dsystemd-units=enabled
        ((LAST_RC == 0)) || fail "meson setup failed: $(tail -n 20 "$LAST_OUT_F")"
        T_CALL=300 run meson introspect "$_SCRATCH/b-on" --installed
        for want in "$prefix/lib/systemd/system/evd.service" "$prefix/lib/systemd/system/evd.socket" \
                "$prefix/lib/systemd/user/evd.service" "$prefix/lib/systemd/user/evd.socket" \
                "$prefix/lib/sysusers.d/evd.conf" "$prefix/lib/tmpfiles.d/evd.conf" \
                "$prefix/share/doc/evd/examples/evd.conf" \
                "$prefix/share/doc/evd/examples/evd.service.d/cluster.conf" \
                "$prefix/share/doc/evd/examples/user/evd.service.d/cluster.conf"; do
                grep -qF "\"$want\"" "$LAST_OUT_F" || fail "$want is not in the install plan: $LAST_OUT"
        done
        T_CALL=300 run meson setup "$_SCRATCH/b-off" "$SOURCE_ROOT" --prefix="$prefix" -Dtests=false -Dman=disabled \
                -Dsystemd-units=disabled
        ((LAST_RC == 0)) || fail "meson setup -Dsystemd-units=disabled failed: $(tail -n 20 "$LAST_OUT_F")"
        T_CALL=300 run meson introspect "$_SCRATCH/b-off" --installed
        # (the examples, the cluster drop-ins among them, are documentation:
        # installed either way)
        ! grep -qE '/evd\.(service|socket)"|sysusers|tmpfiles' "$LAST_OUT_F" ||
                fail "-Dsystemd-units=disabled still installs units: $LAST_OUT"
else
        say "note: no pkg-config systemd or meson; skipped"
fi
exit 0
