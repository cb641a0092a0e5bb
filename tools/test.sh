#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh - configure, build and run every evd test.
#
# Usage: tools/test.sh [--sanitize] [--busy] [-- MESON-TEST-ARGS...]
#
#   (no flag)    build into build/ (debugoptimized, warnings are errors) and
#                run the whole test suite
#   --sanitize   the same in build-asan/ with AddressSanitizer and
#                UndefinedBehaviorSanitizer; any report fails the run
#   --busy       run the tests with every core saturated: one CPU hog
#                (`yes >/dev/null`) per core, started after the build and
#                stopped when the tests end; the suite must pass anyway
#   -- ARGS      passed on to `meson test`, e.g. `-- --suite unit`
#
# It installs nothing: run tools/install-deps.sh first.
set -euo pipefail

usage() {
        sed -n "5,17s/^# \\{0,1\\}//p" "${BASH_SOURCE[0]}"
}

sanitize=0
busy=0
test_args=()
while (($#)); do
        case "$1" in
        --sanitize) sanitize=1 ;;
        --busy) busy=1 ;;
        -h | --help)
                usage
                exit 0
                ;;
        --)
                shift
                test_args=("$@")
                break
                ;;
        *)
                echo "test.sh: unknown argument: $1 (try --help)" >&2
                exit 2
                ;;
        esac
        shift
done

for tool in meson ninja; do
        if ! command -v "$tool" >/dev/null 2>&1; then
                echo "test.sh: $tool not found; run: bash tools/install-deps.sh" >&2
                exit 2
        fi
done

# Work from the top of the source tree, wherever we were called from.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

setup_args=(--werror -Dbuildtype=debugoptimized)
if ((sanitize)); then
        builddir=build-asan
        setup_args+=('-Db_sanitize=address,undefined' -Db_lundef=false)
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
        builddir=build
fi

# A configured build dir has coredata; anything else is set up from scratch.
if [[ -f "$builddir/meson-private/coredata.dat" ]]; then
        if ! meson setup --reconfigure "$builddir" "${setup_args[@]}"; then
                # Typically a build dir made by another meson version.
                echo "test.sh: reconfigure failed, wiping $builddir" >&2
                meson setup --wipe "$builddir" "${setup_args[@]}"
        fi
else
        meson setup "$builddir" "${setup_args[@]}"
fi

meson compile -C "$builddir"

# --busy: one hog per core, killed by pid however the script ends.
hogs=()
stop_hogs() {
        if ((${#hogs[@]})); then
                kill "${hogs[@]}" 2>/dev/null || true
                wait "${hogs[@]}" 2>/dev/null || true # they die of SIGTERM
        fi
        hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM HUP
if ((busy)); then
        ncpu=$(nproc 2>/dev/null || echo 2)
        for ((i = 0; i < ncpu; i++)); do
                yes >/dev/null &
                hogs+=("$!")
        done
        echo "test.sh: running the tests next to ${#hogs[@]} CPU hogs (one per core)"
fi

testlog="$builddir/meson-logs/testlog.json"
rm -f "$testlog"
status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "${test_args[@]}" || status=$?
stop_hogs

# One closing line that says what ran, from meson's machine-readable log.
if [[ -f "$testlog" ]] && command -v python3 >/dev/null 2>&1; then
        busy_note=""
        ((busy)) && busy_note=" (next to $ncpu CPU hogs)"
        python3 - "$testlog" "$builddir" "$busy_note" <<'EOF' || true
import json, sys
passed = failed = skipped = 0
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        result = json.loads(line).get("result", "")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{sys.argv[2]}: {passed} passed, {failed} failed, {skipped} skipped{sys.argv[3]}")
EOF
fi

exit "$status"
