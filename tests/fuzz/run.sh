#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh - fuzz the evd fuzz targets with libFuzzer for a set time each.
#
# Usage: tests/fuzz/run.sh [--time SECONDS] [--builddir DIR] [TARGET...]
#
#   --time S      fuzz each target for S seconds (default 60)
#   --builddir D  the libFuzzer build (default build-fuzz; configured with
#                 CC=clang -Dfuzz=true when it does not exist yet)
#   TARGET        wire, parse, segment (default: all three)
#
# Each target starts from its seed corpus, tests/fuzz/corpus/TARGET/, plus
# what earlier runs found (kept in DIR/fuzz-work/TARGET/, never written back
# into the tree).  Every target runs under ASan and UBSan; a crash, a
# sanitizer report, a broken invariant (an abort), a leak or an input that
# takes more than 30 s (a hang) fails the run: the input is left in
# DIR/fuzz-work/artifacts/ and the command that replays it is printed.
#
# To fuzz longer, give a longer time, e.g. an hour on the segment target:
#   tests/fuzz/run.sh --time 3600 segment
# or run a binary by hand, with libFuzzer's own options (-jobs=N -workers=N
# for parallel runs, -max_len=N, -dict=FILE, -help=1):
#   build-fuzz/tests/fuzz-segment -max_total_time=3600 WORKDIR tests/fuzz/corpus/segment
# An input that broke the code goes into the corpus as regress-WHAT once
# it is fixed, so that every later `meson test` replays it.
set -euo pipefail

usage() {
        sed -n "5,10s/^# \\{0,1\\}//p" "${BASH_SOURCE[0]}"
}

seconds=60
builddir=build-fuzz
targets=()
while (($#)); do
        case "$1" in
        --time)
                seconds=${2:?--time needs a number of seconds}
                shift
                ;;
        --builddir)
                builddir=${2:?--builddir needs a directory}
                shift
                ;;
        -h | --help)
                usage
                exit 0
                ;;
        wire | parse | segment) targets+=("$1") ;;
        *)
                echo "run.sh: unknown argument: $1 (try --help)" >&2
                exit 2
                ;;
        esac
        shift
done
if ((${#targets[@]} == 0)); then
        targets=(wire parse segment)
fi
if [[ ! $seconds =~ ^[1-9][0-9]*$ ]]; then
        echo "run.sh: --time needs a whole number of seconds above 0, not '$seconds'" >&2
        exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if ! command -v clang >/dev/null 2>&1; then
        echo "run.sh: clang not found; run: bash tools/install-deps.sh" >&2
        exit 2
fi
if [[ ! -f $builddir/meson-private/coredata.dat ]]; then
        # No --werror: clang warns about things gcc does not, and this build
        # is for finding crashes.
        CC=clang meson setup "$builddir" -Dfuzz=true -Dbuildtype=debugoptimized -Db_lundef=false
fi
# Only the targets: what else the tree builds is not needed here.
ninja -C "$builddir" "${targets[@]/#/tests/fuzz-}"

work=$builddir/fuzz-work
mkdir -p "$work/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
        mkdir -p "$work/$t"
        log=$work/$t.log
        printf 'run.sh: fuzzing %s for %ss (log: %s)\n' "$t" "$seconds" "$log"
        status=0
        "$builddir/tests/fuzz-$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" \
                "$work/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 || status=$?
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$log" |
                sed "s/^/run.sh: $t: /" || true
        if ((status != 0)); then
                failed+=("$t")
                echo "run.sh: $t FAILED (exit $status); the end of its log:" >&2
                tail -n 40 "$log" >&2
                for a in "$work/artifacts/$t-"*; do
                        [[ -e $a ]] || continue
                        echo "run.sh: replay with: $builddir/tests/fuzz-$t $a" >&2
                done
        fi
done
if ((${#failed[@]})); then
        echo "run.sh: failed: ${failed[*]}" >&2
        exit 1
fi
echo "run.sh: ${targets[*]}: no crash in ${seconds}s each"
