#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install-deps.sh - install the Debian packages evd needs to build, test and demo.
#
# Usage: tools/install-deps.sh [--force]
#
# Safe to run any number of times.  When every package is already installed it
# does nothing (and needs no network); --force runs apt-get update and install
# regardless.  Uses sudo when not run as root.
set -euo pipefail

# Keep in step with the "Dependencies" section of README.md.
packages=(
        build-essential # gcc, make, libc headers
        meson           # the build system
        ninja-build     # meson's backend
        pkg-config      # finds libsystemd and check; generates libevd.pc
        check           # unit-test framework
        libsystemd-dev  # the daemon's sd-event, sd_notify, sd_listen_fds
        libsmartcols-dev # evctl list's table (util-linux's column library)
        s6              # s6-ftrig-notify: the peer evctl's start-up is measured against (evd-bench)
        libcurl4-openssl-dev # cluster mode: the daemon's HTTP client for etcd's v3 JSON gateway
        libjson-c-dev   # cluster mode: the gateway's JSON
        etcd-server     # cluster mode tests: a 3-member etcd cluster on localhost
        etcd-client     # cluster mode tests: etcdctl (health, compact)
        openssl         # cluster-tls test: its CA and certificates
        gdb             # cluster-relet test: holds a client or a daemon's watch thread at a breakpoint
        bash-completion # where bash completions go (pkg-config); the completion test
        zsh             # the completion test parses and runs the zsh completion
        fish            # the completion test parses and runs the fish completion
        systemd         # systemd-socket-activate, systemd-analyze (tests)
        scdoc           # man pages
        redis-server    # the real peer in the Redis-ready test and demo
        redis-tools     # redis-cli, to see when redis answers
        procps          # ps, pgrep: tests look at live processes
        util-linux      # flock, runuser, setsid, setpriv (permission tests)
        passwd          # groupadd, groupdel (permission tests)
        coreutils       # timeout, mktemp
        python3         # summarises meson's test log in tools/test.sh; the evd Python package
        clang           # the fuzz targets (-Dfuzz=true, tests/fuzz/run.sh)
        libclang-rt-dev # clang's libFuzzer, ASan and UBSan runtimes (libclang-rt-14-dev)
        llvm            # llvm-symbolizer: readable stack traces in fuzzer reports
        debhelper       # builds the Debian packages (tools/package-test.sh), with dpkg-dev
        lintian         # checks them
        dh-python       # python3-evd: dh_python3 (byte-compiling, python3:Depends)
)
# CPython's own tests of threading's classes (test.lock_tests), which the
# python-lock_tests test runs against the evd package: for Debian's python3.
py3=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
[[ -z $py3 ]] || packages+=("libpython$py3-testsuite")

force=0
for arg in "$@"; do
        case "$arg" in
        --force) force=1 ;;
        -h | --help)
                echo "usage: $0 [--force]"
                exit 0
                ;;
        *)
                echo "install-deps.sh: unknown argument: $arg" >&2
                exit 2
                ;;
        esac
done

if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps.sh: apt-get not found; this script supports Debian and Ubuntu only." >&2
        echo "install-deps.sh: install these by hand: ${packages[*]}" >&2
        exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        if [[ "$status" != installed ]]; then
                missing+=("$pkg")
        fi
done

if ((${#missing[@]} == 0 && force == 0)); then
        echo "install-deps.sh: all ${#packages[@]} packages already installed"
        exit 0
fi

sudo=()
if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
                echo "install-deps.sh: not root and sudo is missing; run this as root" >&2
                exit 1
        fi
        sudo=(sudo)
fi

if ((force)); then
        missing=("${packages[@]}")
fi

# apt is chatty: keep its output in a log and show it only when it fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run_apt() {
        if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@" >"$log" 2>&1; then
                cat "$log" >&2
                echo "install-deps.sh: apt-get $1 failed" >&2
                exit 1
        fi
}

echo "install-deps.sh: installing ${missing[*]}"
run_apt update -q
run_apt install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps.sh: done"
