#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make-corpus.sh - write the seed corpus of the fuzz targets afresh.
#
# Usage: tests/fuzz/make-corpus.sh [BUILD-DIR]   (default: build)
#
# corpus/wire: messages from fuzz-proto's generator (mostly valid ones of
# every op); corpus/segment: real segments of a real daemon
# (gen-segment-seeds); corpus/parse: the names and durations below.  Files
# whose name starts with "crash-" or "regress-" are inputs a fuzzer once
# broke the code with: they are kept.  Needs a build of the tree
# (tools/test.sh makes one).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../../build}
corpus=$here/corpus

for exe in tests/fuzz-proto tests/gen-segment-seeds; do
        if [[ ! -x $build/$exe ]]; then
                echo "make-corpus.sh: $build/$exe not found; build first (bash tools/test.sh)" >&2
                exit 1
        fi
done

for t in wire parse segment; do
        mkdir -p "$corpus/$t"
        find "$corpus/$t" -type f ! -name 'crash-*' ! -name 'regress-*' -delete
done
# The segment's regression inputs are remade by gen-segment-seeds (they
# must follow the layout).
rm -f "$corpus"/segment/regress-*

"$build/tests/fuzz-proto" --corpus "$corpus/wire" --iterations 48 --seed 7
"$build/tests/gen-segment-seeds" "$corpus/segment"

i=0
while IFS= read -r line; do
        printf '%s' "$line" >"$corpus/parse/seed-$(printf %02d $i)"
        i=$((i + 1))
done <<'LIST'
redis-ready
a
deploy.lock
job:42@host-1.example_name
.hidden
-dash
0123456789012345678901234567890123456789012345678901234567890123
01234567890123456789012345678901234567890123456789012345678901234
with space
slash/name
5s
250ms
2m
1h
1.5s
10
0.25
0
.5
90us
3min
2sec
1e3s
5 s
9999999999999999999s
LIST
printf 'na\tme' >"$corpus/parse/seed-tab"
printf 'caf\xc3\xa9' >"$corpus/parse/seed-utf8"
printf '1.000001' >"$corpus/parse/seed-frac"
printf 'infinity' >"$corpus/parse/seed-infinity"
echo "make-corpus.sh: corpus written under $corpus"
