#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# package-test.sh - build evd's Debian packages from the `meson dist` tarball,
# check them with lintian, install them on this machine, use them as the
# README does, and remove them again.
#
# Usage: tools/package-test.sh [--keep]
#
#   --keep   leave the scratch directory (the tarball, the .debs, the logs)
#            and print its path
#
# It installs packages into the system, so it is not part of tools/test.sh:
# CI runs it as a section of its own (.ci/run), as root on a machine that
# is thrown away.  It needs root, the packages of tools/install-deps.sh
# (debhelper and lintian among them), a committed tree (meson dist archives
# HEAD and refuses uncommitted changes), and unshare(1) with mount rights.
#
# What it proves:
#   1. `meson dist` makes a tarball, and debian/ in it builds evd, libevd1,
#      libevd-dev and python3-evd with `dpkg-buildpackage -us -uc -b`;
#      debian/changelog's upstream version is meson.build's.
#   2. lintian finds no error, and no warning but the known ones below.
#   3. Each package holds what it should (the daemon in /usr/sbin, units,
#      sysusers.d and tmpfiles.d files in evd; the library in libevd1; the
#      header, link and pkg-config file in libevd-dev; the Python module in
#      python3-evd).
#   4. `dpkg -i` works and its scripts make group evd and /run/evd (0750,
#      root:evd).
#   5. In a private mount namespace (fresh /run and /dev/shm, so that a system
#      instance already on this machine is neither used nor disturbed), as at
#      boot: systemd-tmpfiles makes /run/evd from the installed file, the
#      installed evd.service's ExecStart= serves it, three workers of another
#      uid in group evd block in `evctl --system wait redis-ready`, and one
#      `evctl --system set redis-ready --value ...` by a member releases them
#      all with the value; a process outside the group gets exit 6; the
#      installed evctl starts the installed /usr/sbin/evd by itself for a
#      user's own namespace; a program built with
#      `pkg-config --cflags --libs libevd` reads an event set by evctl, and
#      so does Debian's python3 through `import evd`.
#   6. `dpkg --purge` removes every file.
set -euo pipefail

usage() {
        sed -n "5,10s/^# \\{0,1\\}//p" "${BASH_SOURCE[0]}"
}

# Warnings lintian may give without failing the test: the first packaging
# closes no Debian bug (no ITP), as it is not meant for Debian's archive yet.
known_warnings=(initial-upload-closes-no-bugs)

# Deadlines for hangs only (seconds); nothing here measures speed.
T_WAIT=60

# ---------------------------------------------------------------------------
# The part run in a private mount namespace: tools/package-test.sh --inner DIR
# ---------------------------------------------------------------------------
inner() {
        # (globals: the EXIT trap reads them after this function returned)
        inner_tmp=$1 inner_daemon=""
        local tmp=$1 gid member member_groups i d out
        say() { printf 'package-test: %s\n' "$*"; }
        fail() {
                printf 'package-test: FAIL: %s\n' "$*" >&2
                exit 1
        }
        # shellcheck disable=SC2317 # called by the EXIT trap
        stop_daemons() {
                local p
                for p in "$inner_daemon" "$(cat "$inner_tmp/user-rt/evd.pid" 2>/dev/null || true)"; do
                        [[ -n $p ]] || continue
                        kill "$p" 2>/dev/null || true
                done
        }
        trap stop_daemons EXIT
        trap 'exit 130' INT TERM HUP

        # A fresh /run and /dev/shm, seen only by this namespace.
        mount --make-rprivate / 2>/dev/null || true
        mount -t tmpfs -o mode=0755 evd-package-run /run || fail "cannot mount a private /run"
        mount -t tmpfs -o mode=1777 evd-package-shm /dev/shm || fail "cannot mount a private /dev/shm"

        say "boot: systemd-tmpfiles makes /run/evd from the installed tmpfiles.d/evd.conf"
        systemd-tmpfiles --create /usr/lib/tmpfiles.d/evd.conf || fail "systemd-tmpfiles --create evd.conf failed"
        gid=$(getent group evd | cut -d: -f3)
        [[ $(stat -c '%F %a %u:%g' /run/evd) == "directory 750 0:$gid" ]] ||
                fail "/run/evd after tmpfiles is $(stat -c '%F %a %U:%G' /run/evd), not a directory 750 root:evd"

        # Everyone asks the daemon the unit starts; nobody starts a daemon of
        # their own in /run/evd.
        export EVD_NO_AUTOSTART=1
        unset EVD_RUNTIME_DIR EVD_DAEMON XDG_RUNTIME_DIR

        local unit=""
        for d in /lib/systemd/system /usr/lib/systemd/system; do
                [[ -f $d/evd.service ]] && unit=$d/evd.service
        done
        [[ -n $unit ]] || fail "no evd.service installed"
        local exec
        exec=$(sed -n 's/^ExecStart=//p' "$unit")
        [[ $exec == "/usr/sbin/evd --system --group evd" ]] ||
                fail "$unit runs '$exec', not '/usr/sbin/evd --system --group evd'"
        say "the system instance: $exec (the ExecStart= of $unit)"
        # shellcheck disable=SC2086 # the unit's command line, split as systemd would
        $exec >"$tmp/evd-system.log" 2>&1 &
        inner_daemon=$!
        echo "$inner_daemon" >>"$tmp/daemons"
        for ((i = 0; i < T_WAIT * 10; i++)); do
                evctl --system list >/dev/null 2>&1 && break
                kill -0 "$inner_daemon" 2>/dev/null || fail "evd exited: $(cat "$tmp/evd-system.log")"
                sleep 0.1
        done
        evctl --system list >/dev/null || fail "the system instance did not answer within ${T_WAIT}s"
        [[ $(stat -c '%a %u:%g' /run/evd/evd.sock) == "660 0:$gid" ]] ||
                fail "the socket is $(stat -c '%a %U:%G' /run/evd/evd.sock), not 660 root:evd"

        # The README's first example, by processes of another uid whose only
        # right to the namespace is group evd.
        member=(setpriv --reuid=65534 --regid=65534 --groups="$gid" --)
        member_groups=$("${member[@]}" id -G)
        say "three workers (uid 65534, groups $member_groups) wait for redis-ready"
        local pids=()
        for n in 1 2 3; do
                "${member[@]}" timeout $((T_WAIT * 2)) evctl --system wait redis-ready \
                        >"$tmp/worker$n.out" 2>"$tmp/worker$n.err" &
                pids+=($!)
        done
        local waiters=""
        for ((i = 0; i < T_WAIT * 10; i++)); do
                waiters=$(evctl --system show redis-ready 2>/dev/null | sed -n 's/^waiters: //p') || true
                [[ $waiters == 3 ]] && break
                sleep 0.1
        done
        [[ $waiters == 3 ]] || fail "3 workers should block in wait, $waiters do: $(cat "$tmp"/worker*.err)"
        say "a member sets redis-ready; every worker returns with the value"
        "${member[@]}" evctl --system set redis-ready --value 127.0.0.1:6379 ||
                fail "a member of group evd cannot set redis-ready"
        for n in 1 2 3; do
                local rc=0
                wait "${pids[n - 1]}" || rc=$?
                ((rc == 0)) || fail "worker $n exited $rc: $(cat "$tmp/worker$n.err")"
                [[ $(cat "$tmp/worker$n.out") == 127.0.0.1:6379 ]] ||
                        fail "worker $n printed '$(cat "$tmp/worker$n.out")', not 127.0.0.1:6379"
        done
        evctl --system is-set redis-ready || fail "redis-ready is not set after set"
        say "a member runs a command under a semaphore of four (the README's builds)"
        "${member[@]}" evctl --system sem create builds --max 4 --exist-ok ||
                fail "a member cannot create the semaphore builds"
        out=$("${member[@]}" timeout "$T_WAIT" evctl --system sem run builds -- echo built) ||
                fail "a member cannot run a command under the semaphore builds"
        [[ $out == built ]] || fail "sem run builds -- echo built printed '$out'"

        say "a process outside group evd is refused (exit 6)"
        local rc=0
        setpriv --reuid=65534 --regid=65534 --clear-groups -- evctl --system is-set redis-ready \
                2>"$tmp/outsider.err" || rc=$?
        ((rc == 6)) || fail "outside group evd: exit $rc, not 6: $(cat "$tmp/outsider.err")"

        say "a program built with pkg-config --cflags --libs libevd reads an event evctl set"
        evctl --system set installed --value from-the-package || fail "evctl --system set installed"
        out=$(timeout "$T_WAIT" "$tmp/prog") || fail "the pkg-config program failed"
        [[ $out == from-the-package ]] || fail "the pkg-config program read '$out'"

        say "Debian's python3 reads it too, through import evd (python3-evd)"
        out=$(cd / && env -u EVD_LIBEVD -u PYTHONPATH timeout "$T_WAIT" /usr/bin/python3 -c \
                'import evd; print(evd.Event("installed").wait(5))' 2>&1) || fail "import evd: $out"
        [[ $out == from-the-package ]] || fail "the Python module read '$out'"

        say "the installed evctl starts the installed evd by itself for a user's own namespace"
        mkdir -m 0700 "$tmp/user-rt"
        chown 65534:65534 "$tmp/user-rt"
        unset EVD_NO_AUTOSTART
        setpriv --reuid=65534 --regid=65534 --clear-groups -- env EVD_RUNTIME_DIR="$tmp/user-rt" \
                timeout "$T_WAIT" evctl set autostarted --value yes 2>"$tmp/autostart.err" ||
                fail "evctl set with autostart failed: $(cat "$tmp/autostart.err")"
        local upid
        upid=$(cat "$tmp/user-rt/evd.pid" 2>/dev/null) || fail "no daemon was started for the user's namespace"
        echo "$upid" >>"$tmp/daemons"
        [[ $(readlink "/proc/$upid/exe") == /usr/sbin/evd ]] ||
                fail "autostart ran $(readlink "/proc/$upid/exe"), not /usr/sbin/evd"
        [[ $(stat -c %u "/proc/$upid") == 65534 ]] || fail "the autostarted evd does not run as the user"
        say "ok (in the private namespace)"
}

if [[ ${1:-} == --inner ]]; then
        inner "$2"
        exit 0
fi

# ---------------------------------------------------------------------------
# The host side
# ---------------------------------------------------------------------------
keep=0
for arg in "$@"; do
        case "$arg" in
        --keep) keep=1 ;;
        -h | --help)
                usage
                exit 0
                ;;
        *)
                echo "package-test.sh: unknown argument: $arg (try --help)" >&2
                exit 2
                ;;
        esac
done

say() { printf 'package-test: %s\n' "$*"; }
fail() {
        printf 'package-test: FAIL: %s\n' "$*" >&2
        exit 1
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

((EUID == 0)) || fail "needs root: it installs packages into the system (run it where that is wanted, e.g. CI)"
for tool in meson ninja dpkg-buildpackage dh lintian pkg-config cc setpriv unshare systemd-tmpfiles timeout; do
        command -v "$tool" >/dev/null || fail "$tool not found; run: bash tools/install-deps.sh"
done
for p in evd libevd1 libevd-dev python3-evd; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        if [[ -n $status && $status != not-installed ]]; then
                fail "package $p is installed already; this test installs and purges its own (dpkg --purge $p first)"
        fi
done
[[ ! -e /usr/sbin/evd && ! -e /usr/bin/evctl ]] ||
        fail "/usr/sbin/evd or /usr/bin/evctl exists outside any package; this test would overwrite it"

tmp=$(mktemp -d /tmp/evd-package.XXXXXX)
# Processes of uid 65534 reach their files in here.
chmod 0711 "$tmp"
installed=0
group_existed=0
getent group evd >/dev/null && group_existed=1
run_existed=0
run_stat=""
if [[ -e /run/evd ]]; then
        run_existed=1
        run_stat=$(stat -c '%a %u %g' /run/evd)
fi

cleanup() {
        local rc=$?
        set +e
        trap - EXIT
        # Daemons the namespace part started, should its own trap not have
        # stopped them (killed at its deadline).
        local p
        while read -r p; do
                [[ $(readlink "/proc/$p/exe" 2>/dev/null) == /usr/sbin/evd* ]] && kill "$p" 2>/dev/null
        done < <(cat "$tmp/daemons" 2>/dev/null)
        if ((installed)); then
                say "cleaning up: dpkg --purge python3-evd libevd-dev evd libevd1"
                dpkg --purge python3-evd libevd-dev evd libevd1 >"$tmp/purge.log" 2>&1 || cat "$tmp/purge.log" >&2
        fi
        # What dpkg -i did to the host: /run/evd (tmpfiles.d) and group evd
        # (sysusers.d), undone unless they were here before.
        if ((run_existed)); then
                read -r mode uid gid <<<"$run_stat"
                chown "$uid:$gid" /run/evd 2>/dev/null
                chmod "$mode" /run/evd 2>/dev/null
        else
                rm -rf /run/evd
        fi
        if ((!group_existed)) && getent group evd >/dev/null; then
                groupdel evd
        fi
        if ((keep || rc != 0)); then
                say "scratch directory kept: $tmp"
        else
                rm -rf "$tmp"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# 1. The tarball, and the packages built from it ---------------------------
version=$(meson introspect --projectinfo meson.build | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
debversion=$(dpkg-parsechangelog -l debian/changelog -S Version)
[[ ${debversion%-*} == "$version" ]] ||
        fail "debian/changelog's version $debversion is not meson.build's $version plus a Debian revision"

say "meson dist (evd $version)"
meson setup "$tmp/dist-build" -Dtests=false -Dman=disabled >"$tmp/dist-setup.log" 2>&1 ||
        { tail -n 30 "$tmp/dist-setup.log" >&2; fail "meson setup for dist"; }
meson dist -C "$tmp/dist-build" --no-tests --formats xztar >"$tmp/dist.log" 2>&1 ||
        { tail -n 30 "$tmp/dist.log" >&2; fail "meson dist (commit your changes: it archives HEAD)"; }
tarball=$tmp/dist-build/meson-dist/evd-$version.tar.xz
[[ -f $tarball ]] || fail "meson dist made no $tarball"
for f in LICENSE NEWS debian/control debian/rules; do
        tar -tJf "$tarball" "evd-$version/$f" >/dev/null 2>&1 || fail "$f is not in the dist tarball"
done

mkdir "$tmp/deb"
cp "$tarball" "$tmp/deb/evd_$version.orig.tar.xz"
tar -xJf "$tarball" -C "$tmp/deb"
say "dpkg-buildpackage -us -uc -b"
(cd "$tmp/deb/evd-$version" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1 ||
        { tail -n 40 "$tmp/build.log" >&2; fail "dpkg-buildpackage failed (log: $tmp/build.log)"; }
arch=$(dpkg --print-architecture)
changes=$tmp/deb/evd_${debversion}_$arch.changes
debs=()
for p in evd libevd1 libevd-dev; do
        f=$tmp/deb/${p}_${debversion}_$arch.deb
        [[ -f $f ]] || fail "no ${p}_${debversion}_$arch.deb was built"
        debs+=("$f")
done
f=$tmp/deb/python3-evd_${debversion}_all.deb
[[ -f $f ]] || fail "no python3-evd_${debversion}_all.deb was built"
debs+=("$f")

# 2. lintian ------------------------------------------------------------------
say "lintian"
lrc=0
lintian --fail-on error "$changes" >"$tmp/lintian.log" 2>&1 || lrc=$?
sed 's/^/  /' "$tmp/lintian.log"
((lrc == 0)) || fail "lintian found errors (exit $lrc)"
while read -r kind pkg tag _; do
        [[ $kind == W: ]] || continue
        allowed=0
        for k in "${known_warnings[@]}"; do
                [[ $tag == "$k" ]] && allowed=1
        done
        ((allowed)) || fail "lintian warning not known to be harmless: $pkg $tag"
done <"$tmp/lintian.log"

# 3. What each package holds -----------------------------------------------------
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
contains() {
        local deb=$1 path
        shift
        for path in "$@"; do
                dpkg-deb -c "$deb" | awk '{print $6}' | grep -x "\\.$path" >/dev/null ||
                        fail "$(basename "$deb") does not hold $path"
        done
}
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
contains "${debs[0]}" /usr/sbin/evd /usr/bin/evctl "$unitdir/evd.service" "$unitdir/evd.socket" \
        /usr/lib/systemd/user/evd.service /usr/lib/systemd/user/evd.socket \
        /usr/lib/sysusers.d/evd.conf /usr/lib/tmpfiles.d/evd.conf \
        /usr/share/man/man1/evctl.1.gz /usr/share/man/man8/evd.8.gz /usr/share/doc/evd/copyright \
        /usr/share/doc/evd/changelog.gz /usr/share/bash-completion/completions/evctl \
        /usr/share/zsh/vendor-completions/_evctl /usr/share/fish/vendor_completions.d/evctl.fish
# The library's own version (lib/meson.build), not the project's.
libver=$(sed -n "s/^libevd_version = '\(.*\)'$/\1/p" lib/meson.build)
[[ -n $libver ]] || fail "no libevd_version in lib/meson.build"
contains "${debs[1]}" "/usr/lib/$multiarch/libevd.so.1" "/usr/lib/$multiarch/libevd.so.$libver"
contains "${debs[2]}" /usr/include/evd.h "/usr/lib/$multiarch/libevd.so" \
        "/usr/lib/$multiarch/pkgconfig/libevd.pc" /usr/share/man/man3/libevd.3.gz
contains "${debs[3]}" /usr/lib/python3/dist-packages/evd/__init__.py \
        /usr/lib/python3/dist-packages/evd/_lib.py
! dpkg-deb -c "${debs[0]}" | grep '/usr/bin/evd$' >/dev/null || fail "evd still installs /usr/bin/evd"

# 4. dpkg -i ----------------------------------------------------------------------
say "dpkg -i ${debs[*]##*/}"
installed=1
dpkg -i "${debs[@]}" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "dpkg -i failed"; }
for p in evd libevd1 libevd-dev python3-evd; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p") == installed ]] || fail "$p is not installed"
done
getent group evd >/dev/null || fail "installing evd made no group evd (sysusers.d)"
bash --norc --noprofile -c '. /usr/share/bash-completion/completions/evctl && complete -p evctl' \
        >/dev/null 2>&1 || fail "the installed bash completion does not register evctl"
gid=$(getent group evd | cut -d: -f3)
[[ $(stat -c '%F %a %u:%g' /run/evd 2>&1) == "directory 750 0:$gid" ]] ||
        fail "after dpkg -i, /run/evd is '$(stat -c '%F %a %U:%G' /run/evd 2>&1)', not a directory 750 root:evd (tmpfiles.d)"
[[ $(evctl --version) == "evctl $version" ]] || fail "evctl --version says '$(evctl --version)'"
[[ $(/usr/sbin/evd --version) == "evd $version" ]] || fail "evd --version says '$(/usr/sbin/evd --version)'"
# (/lib is /usr/lib on a merged /usr)
# (grep reads the whole of ldd's output, never -q: under pipefail, a grep -q
# that ends the pipe early fails it when ldd writes on)
ldd /usr/bin/evctl | grep -E "libevd\.so\.1 => (/usr)?/lib/$multiarch/libevd\.so\.1 " >/dev/null ||
        fail "the installed evctl does not use the installed libevd: $(ldd /usr/bin/evctl | grep libevd)"

say "a program built with pkg-config --cflags --libs libevd"
# shellcheck disable=SC2046 # pkg-config's words are meant to split
cc -Wall -Wextra -Werror -o "$tmp/prog" tests/integration/installed-event.c $(pkg-config --cflags --libs libevd) ||
        fail "a program does not build with pkg-config --cflags --libs libevd"
ldd "$tmp/prog" | grep -E "libevd\.so\.1 => (/usr)?/lib/$multiarch/libevd\.so\.1 " >/dev/null ||
        fail "the program does not use the installed libevd: $(ldd "$tmp/prog" | grep libevd)"

# 5. Use them, in a private mount namespace -----------------------------------------
timeout --kill-after=10 $((T_WAIT * 5)) unshare --mount --propagation private \
        bash "${BASH_SOURCE[0]}" --inner "$tmp" || fail "the installed packages do not work (see above)"

# 6. dpkg --purge -------------------------------------------------------------------
say "dpkg --purge python3-evd libevd-dev evd libevd1"
dpkg --purge python3-evd libevd-dev evd libevd1 >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log" >&2; fail "dpkg --purge failed"; }
installed=0
for f in /usr/sbin/evd /usr/bin/evctl "/usr/lib/$multiarch/libevd.so.1" /usr/include/evd.h \
        "$unitdir/evd.service" /usr/lib/tmpfiles.d/evd.conf /usr/lib/python3/dist-packages/evd; do
        [[ ! -e $f ]] || fail "$f is still there after dpkg --purge"
done
say "ok: evd $debversion built, lintian-clean (no errors), installed, used and purged"
