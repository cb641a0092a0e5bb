#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# startup.sh - what an evctl process loads: libevd and libc, nothing else,
# for every command but a table-drawing list, which loads libsmartcols
# (dlopen) when it draws the table; and such a list still prints it.  The
# libraries are read from the dynamic loader itself (LD_DEBUG=files) and
# from the binary's NEEDED entries (readelf).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evd_setup

# In a sanitizer build (tools/test.sh --sanitize) evctl also needs the
# sanitizers' runtimes, which bring libstdc++, libm and libgcc_s: they are
# the build's, not evctl's, and are left out of what is compared.
not_sanitizer() {
        if [[ $(readelf -d "$EVCTL" 2>/dev/null) == *'[libasan.so'* || $(readelf -d "$EVCTL" 2>/dev/null) == *'[libubsan.so'* ]]; then
                grep -Ev '^(libasan|libubsan|libstdc\+\+|libm|libgcc_s)\.so' || true
        else
                cat
        fi
}

# loaded CMD...: the basenames of the shared objects the loader maps for
# evctl CMD..., one a line, in LOADED (vdso aside).
loaded() {
        run env LD_DEBUG=files "$EVCTL" "$@"
        LOADED=$(sed -n 's/.*[[:space:]]file=\([^ ]*\) \[[0-9]*\];  \(needed\|dynamically loaded\) by .*/\1/p' \
                "$LAST_ERR_F" | sort -u | not_sanitizer)
}

check "evctl needs libevd and libc only (NEEDED)"
if command -v readelf >/dev/null; then
        needed=$(readelf -d "$EVCTL" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | not_sanitizer | tr '\n' ' ')
        [[ $needed == "libc.so.6 libevd.so.1 " ]] || fail "evctl's NEEDED entries: $needed"
else
        say "note: readelf not installed, NEEDED not checked"
fi

check "set, is-set, wait, create, delete, list --json and --raw load libevd and libc, never libsystemd or libsmartcols"
expect_exit 0 "$EVCTL" create st-probe
for cmd in "set st-x --value v" "is-set st-x" "wait st-x --timeout 0" "create st-y" "delete st-y" \
        "list --json" "list --raw" "show st-x" "sem create st-s --max 2" "sem value st-s"; do
        # shellcheck disable=SC2086 # CMD is words
        loaded $cmd
        [[ $LAST_RC == 0 ]] || fail "evctl $cmd exited $LAST_RC
$(_show_last)"
        [[ $(tr '\n' ' ' <<<"$LOADED") == "libc.so.6 libevd.so.1 " ]] ||
                fail "evctl $cmd loaded: $(tr '\n' ' ' <<<"$LOADED")"
done

check "list draws its table with libsmartcols, loaded when it draws it"
loaded list
[[ $LAST_RC == 0 ]] || fail "evctl list exited $LAST_RC
$(_show_last)"
grep -q 'file=libsmartcols\.so\.1 \[[0-9]*\];  dynamically loaded by' "$LAST_ERR_F" ||
        fail "list did not dlopen libsmartcols: $(tr '\n' ' ' <<<"$LOADED")"
! grep -q 'file=libsmartcols.*needed by' "$LAST_ERR_F" || fail "libsmartcols is linked, not loaded late"
grep -Eq '^NAME +TYPE +KIND +STATE +WAITERS +VALUE' "$LAST_OUT_F" || fail "no table header
$(_show_last)"
grep -Eq '^st-x +event +manual +set +0 +v$' "$LAST_OUT_F" || fail "no aligned row for st-x
$(_show_last)"
! grep -q 'libsystemd' <<<"$LOADED" || fail "list loaded libsystemd"

say "ok"
