#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install.sh - `meson install` into a fresh prefix gives a usable daemon, tool,
# library, header and pkg-config file: a program built with
# `pkg-config --cflags --libs libevd` talks to a daemon that the installed
# evctl started by itself from the installed path, sbin/evd (where daemons go;
# the units run the same path).  Also checks the soname and
# that libevd exports exactly the symbols of its version script.
set -euo pipefail

: "${SOURCE_ROOT:?meson passes SOURCE_ROOT}"
tmp=$(mktemp -d /tmp/evd-it-install.XXXXXX)
prefix=$tmp/prefix
rt=$tmp/rt
# evctl makes only the default runtime directories, never a named one.
mkdir -m 0700 "$rt"
cleanup() {
        if [[ -f $rt/evd.pid ]]; then
                kill "$(cat "$rt/evd.pid")" 2>/dev/null || true
                sleep 0.2
        fi
        if [[ -f $rt/evd.log ]]; then
                grep -oE '/evd-[0-9]+-[0-9a-f]{16}' "$rt/evd.log" | sort -u | while read -r seg; do
                        rm -f "/dev/shm$seg"
                done
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
        echo "install: FAIL: $*" >&2
        exit 1
}

echo "install: configuring a separate build with prefix $prefix"
meson setup "$tmp/build" "$SOURCE_ROOT" --prefix="$prefix" -Dtests=false >"$tmp/setup.log" 2>&1 ||
        { cat "$tmp/setup.log"; fail "meson setup"; }
ninja -C "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build"; }
meson install -C "$tmp/build" --quiet >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "install"; }

for f in sbin/evd bin/evctl include/evd.h; do
        [[ -e $prefix/$f ]] || fail "$f was not installed"
done
pc=$(find "$prefix" -name libevd.pc | head -n1)
[[ -n $pc ]] || fail "libevd.pc was not installed"
lib=$(find "$prefix" -name 'libevd.so.1' | head -n1)
[[ -n $lib ]] || fail "libevd.so.1 was not installed"
libdir=$(dirname "$lib")
if command -v scdoc >/dev/null; then
        for m in man1/evctl.1 man8/evd.8 man3/libevd.3; do
                [[ -e $prefix/share/man/$m ]] || fail "man page $m was not installed"
        done
fi
# Shell completions, under the prefix where each shell looks.
for f in share/bash-completion/completions/evctl share/zsh/site-functions/_evctl \
        share/fish/vendor_completions.d/evctl.fish; do
        [[ -f $prefix/$f ]] || fail "completion $f was not installed"
done
bash -c '. "$1" && complete -p evctl' _ "$prefix/share/bash-completion/completions/evctl" >/dev/null ||
        fail "the installed bash completion does not register evctl"
if pkg-config --exists systemd; then
        # Under the prefix (where systemd looks for /usr/local ones too),
        # running the installed evd.
        for u in lib/systemd/system/evd.service lib/systemd/system/evd.socket \
                lib/systemd/user/evd.service lib/systemd/user/evd.socket lib/sysusers.d/evd.conf \
                lib/tmpfiles.d/evd.conf; do
                [[ -f $prefix/$u ]] || fail "$u was not installed"
        done
        grep -qx "ExecStart=$prefix/sbin/evd --system --group evd" "$prefix/lib/systemd/system/evd.service" ||
                fail "the installed evd.service does not run $prefix/sbin/evd"
        grep -qx "ExecStart=$prefix/sbin/evd --user" "$prefix/lib/systemd/user/evd.service" ||
                fail "the installed user evd.service does not run $prefix/sbin/evd"
        # /run/evd made at boot with the group evd.service gives it.
        grep -qx 'd /run/evd 0750 root evd -' "$prefix/lib/tmpfiles.d/evd.conf" ||
                fail "the installed tmpfiles.d/evd.conf does not make /run/evd 0750 root:evd: $(grep -v '^#' "$prefix/lib/tmpfiles.d/evd.conf")"
        # What boot does, in a scratch root: sysusers.d makes the group,
        # then tmpfiles.d makes /run/evd with it.
        if command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
                root=$tmp/root
                mkdir -p "$root/etc"
                echo 'root:x:0:' >"$root/etc/group"
                echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
                systemd-sysusers --root="$root" "$prefix/lib/sysusers.d/evd.conf" >"$tmp/sysusers.log" 2>&1 ||
                        fail "systemd-sysusers refused the installed sysusers.d/evd.conf: $(cat "$tmp/sysusers.log")"
                gid=$(awk -F: '$1 == "evd" {print $3}' "$root/etc/group")
                [[ -n $gid ]] || fail "sysusers.d/evd.conf made no group evd: $(cat "$root/etc/group")"
                systemd-tmpfiles --root="$root" --create "$prefix/lib/tmpfiles.d/evd.conf" >"$tmp/tmpfiles.log" 2>&1 ||
                        fail "systemd-tmpfiles refused the installed tmpfiles.d/evd.conf: $(cat "$tmp/tmpfiles.log")"
                got=$(stat -c '%F %a %u:%g' "$root/run/evd" 2>&1) || true
                [[ $got == "directory 750 0:$gid" ]] ||
                        fail "tmpfiles.d/evd.conf made /run/evd as '$got', not 'directory 750 0:$gid' (root:evd)"
        fi
fi

echo "install: soname and exported symbols"
readelf -d "$lib" | grep 'SONAME.*\[libevd\.so\.1\]' >/dev/null || fail "soname is not libevd.so.1"
# (type A: the version nodes themselves, EVD_1 and EVD_1.1, not functions)
exported=$(nm -D --defined-only "$lib" | awk '$2 != "A" {sub(/@.*/, "", $3); print $3}' | sort)
declared=$(sed -n 's/^[[:space:]]*\(evd_[a-z_]*\);$/\1/p' "$SOURCE_ROOT/lib/libevd.sym" | sort)
[[ $exported == "$declared" ]] ||
        fail "exported symbols differ from libevd.sym: $(diff <(echo "$exported") <(echo "$declared") | tr '\n' ' ')"
nm -D --defined-only "$lib" | grep ' EVD_1$' >/dev/null || fail "symbols are not versioned EVD_1"
nm -D --defined-only "$lib" | grep ' evd_cluster_status@@EVD_1\.1$' >/dev/null ||
        fail "the symbols added in 1.1 are not versioned EVD_1.1"

echo "install: building a program with pkg-config"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
# shellcheck disable=SC2046 # pkg-config's words are meant to split
cc -Wall -Wextra -Werror -o "$tmp/prog" "$SOURCE_ROOT/tests/integration/installed-event.c" $(pkg-config --cflags --libs libevd) ||
        fail "a program does not build with pkg-config --cflags --libs libevd"

echo "install: pkg-config gives the library's version, as evd.h does"
pcver=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --modversion libevd)
hdrver=$(printf '#include <evd.h>\nEVD_VERSION_MAJOR.EVD_VERSION_MINOR.EVD_VERSION_MICRO\n' |
        cpp -P -I"$prefix/include" - | tr -d ' ' | tail -n1)
[[ $pcver == "$hdrver" ]] || fail "pkg-config says libevd $pcver, evd.h says $hdrver"

echo "install: a program sees evd.h and nothing else of libevd"
headers=$(cd "$prefix/include" && find . -type f | sort)
[[ $headers == "./evd.h" ]] || fail "installed headers are not just evd.h: $(echo $headers)"
for private in segment.h client.h object.h proto.h; do
        printf '#include <evd.h>\n#include "%s"\nint main(void) { return 0; }\n' "$private" >"$tmp/private.c"
        # shellcheck disable=SC2046
        if cc -c -o "$tmp/private.o" "$tmp/private.c" $(pkg-config --cflags libevd) 2>/dev/null; then
                fail "a program built with pkg-config's flags can include the private $private"
        fi
done
# The header stands alone, in C and in C++, with every warning.
printf '#include <evd.h>\nint main(void) { return EVD_VERSION_MAJOR == 1 ? 0 : 1; }\n' >"$tmp/alone.c"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Wpedantic -Werror -c -o "$tmp/alone.o" "$tmp/alone.c" $(pkg-config --cflags libevd) ||
        fail "evd.h does not build alone as C99 with -Wpedantic"
if command -v c++ >/dev/null; then
        cp "$tmp/alone.c" "$tmp/alone.cc"
        # shellcheck disable=SC2046
        c++ -Wall -Wextra -Werror -c -o "$tmp/alone.o" "$tmp/alone.cc" $(pkg-config --cflags libevd) ||
                fail "evd.h does not build as C++"
fi

echo "install: the installed evctl starts the installed evd by itself"
export LD_LIBRARY_PATH=$libdir EVD_RUNTIME_DIR=$rt
unset EVD_DAEMON EVD_NO_AUTOSTART
timeout 120 "$prefix/bin/evctl" set installed --value from-the-prefix || fail "evctl set (autostart)"
[[ -f $rt/evd.pid ]] || fail "no daemon was started"
exe=$(readlink "/proc/$(cat "$rt/evd.pid")/exe")
[[ $exe == "$prefix/sbin/evd" ]] || fail "autostart ran $exe, not $prefix/sbin/evd"
out=$(timeout 120 "$tmp/prog") || fail "the pkg-config program failed"
[[ $out == from-the-prefix ]] || fail "the program read '$out'"

echo "install: the Python package, in the site directory of meson's python"
pkg=$(find "$prefix" -path '*/evd/__init__.py' | head -n1)
[[ -n $pkg ]] || fail "the Python package evd was not installed"
[[ -f $(dirname "$pkg")/_lib.py ]] || fail "evd/_lib.py was not installed"
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3)
# It finds libevd.so.1 in the libdir it was installed with, even where
# the loader's paths do not lead there.
out=$(cd / && PYTHONPATH=$(dirname "$(dirname "$pkg")") EVD_LIBEVD='' LD_LIBRARY_PATH='' timeout 120 "$py" -c '
import evd
e = evd.Event("installed")
print(e.wait(0))
' 2>&1) || fail "import evd from $pkg failed: $out"
[[ $out == from-the-prefix ]] || fail "the installed Python package read '$out'"
echo "install: ok"
