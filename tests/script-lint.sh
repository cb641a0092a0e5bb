#!/bin/bash
# The project's shell scripts: each parses (bash -n), and none pipes into
# 'grep -q'.  Under 'set -o pipefail' (which every script here sets), a
# grep -q that finds its match ends the pipe early; a writer that still has
# output gets SIGPIPE and the whole check fails, now and then, depending on
# timing.  'grep PATTERN >/dev/null' reads all its input and does not race.
#   script-lint.sh SOURCE_ROOT        check the tree
#   script-lint.sh --self-test        check that the checks catch each fault
set -euo pipefail

lint() {        # lint FILE...: prints one line per fault, fails if any
        local f bad=0
        for f in "$@"; do
                if ! err=$(bash -n "$f" 2>&1); then
                        echo "$f: does not parse: ${err%%$'\n'*}"
                        bad=1
                fi
                # a single '|' (not '||') then grep with q among its flags
                if grep -nE '(^|[^|])\|[[:space:]]*grep[[:space:]]+-[A-Za-z]*q' "$f" >"$tmp/hits"; then
                        sed "s|^|$f:|; s|\$|   <- a pipe into grep -q races under pipefail; use grep ... >/dev/null|" "$tmp/hits"
                        bad=1
                fi
        done
        return "$bad"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ ${1-} == --self-test ]]; then
        # (the faults are spelled through %s so that this file passes its own check)
        printf '#!/bin/bash\nset -o pipefail\nls | %s x || true\n' 'grep -q' >"$tmp/a.sh"
        printf '#!/bin/bash\nls |%s x || true\n' ' grep -Eqx' >"$tmp/b.sh"
        printf '#!/bin/bash\nif true; then\n' >"$tmp/c.sh"
        printf '#!/bin/bash\nset -o pipefail\nls | grep -x x >/dev/null || grep -q y /dev/null || true\n' >"$tmp/ok.sh"
        for f in a b c; do
                if lint "$tmp/$f.sh" >/dev/null; then
                        echo "self-test: the fault in $f.sh was not caught"; exit 1
                fi
        done
        lint "$tmp/ok.sh" || { echo "self-test: a good script was refused"; exit 1; }
        echo "self-test: ok"
        exit 0
fi

root=${1:?usage: script-lint.sh SOURCE_ROOT | --self-test}
cd "$root"
# (git's list where the tree is a checkout; in an unpacked tarball, which may
# sit inside another checkout's build directory, every script there)
mapfile -t files < <(git ls-files '*.sh' .ci/run 2>/dev/null || true)
((${#files[@]} > 0)) || mapfile -t files < <(find . \( -name '*.sh' -o -path ./.ci/run \) -type f)
((${#files[@]} > 0)) || { echo "script-lint: no scripts found under $root"; exit 1; }
lint "${files[@]}"
echo "script-lint: ${#files[@]} scripts ok"
