#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# limits.sh - every limit evctl enforces is named by the message that
# enforces it: names for --any/--all (128, futex_waitv's), a barrier's
# parties (4096, the table of holds), the table of holds itself when it is
# full (4096, exit 7), a namespace full of objects (evd --max-capacity), a
# value's size (4096 bytes), a name's length (64) and numbers' range.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python

evd_setup

check "--any/--all: 128 names, futex_waitv's limit"
names=()
for i in $(seq 1 129); do
        names+=("n$i")
done
expect_error 2 "at most 128 names \(the kernel's limit for one futex_waitv\), not 129" \
        "$EVCTL" wait --any "${names[@]}"

check "barrier parties: 4096, the table of holds"
expect_error 2 "--parties needs a number from 1 to 4096, not '4097': 4096 is the most a barrier can wait for \(each party waiting takes one of the namespace's 4096 holds\)" \
        "$EVCTL" barrier wait b --parties 4097
expect_error 2 "not '99999999999999999999': 4096 is the most a barrier can wait for" "$EVCTL" barrier wait b --parties 99999999999999999999
expect_error 2 "--parties needs a number from 1 to 4096, not '0'" "$EVCTL" barrier wait b --parties 0
expect_error 2 "--parties needs a number from 1 to 4096, not '-5'" "$EVCTL" barrier wait b --parties -5

check "values, names and numbers name their limits"
expect_error 2 "at most 4096 are allowed" "$EVCTL" set v --value "$(head -c 4097 /dev/zero | tr '\0' x)"
expect_error 2 "at most 64 are allowed" "$EVCTL" set "$(head -c 65 /dev/zero | tr '\0' x)"
expect_error 2 "--max needs a number from 1 to 2147483647" "$EVCTL" sem create s --max 2147483648

check "a namespace full of objects: exit 7, naming evd --max-capacity"
evd_setup --capacity 1 --max-capacity 2
expect_exit 0 "$EVCTL" create o1
expect_exit 0 "$EVCTL" create o2
expect_error 7 "cannot create o3: the namespace is full \(it grows as objects are created, up to evd --max-capacity, 1048576 by default\)" \
        "$EVCTL" create o3

evd_setup
check "the table of holds full: exit 7, naming its size"
expect_exit 0 "$EVCTL" sem create big --max 8192
lib=$(dirname "$EVCTL")/../lib/libevd.so.1
[[ -e $lib ]] || fail "no libevd beside evctl ($lib)"
if ldd "$lib" 2>/dev/null | grep 'libasan' >/dev/null; then
        # A sanitizer build's libevd cannot be loaded into python3, which
        # was not started with the sanitizer's runtime.
        say "note: libevd is built with a sanitizer; the full table of holds is checked by the normal build"
        exit 0
fi
bg_start 300 "$PY" "$(dirname "${BASH_SOURCE[0]}")/fill-holds.py" "$lib" big 8192 4096 "$_SCRATCH/stop"
filler=$BG_PID
wait_until "[[ -s '$(bg_out "$filler")' ]]" || fail "the holds were not taken
$(bg_show "$filler")"
[[ $(cat "$(bg_out "$filler")") == 4096 ]] || fail "not 4096 holds taken
$(bg_show "$filler")"
expect_error 7 "cannot acquire big: the namespace's table of holds is full \(4096 in all: slots and locks held, barrier parties waiting\)" \
        "$EVCTL" sem acquire big --owner $$
expect_error 7 "table of holds is full \(4096 in all" "$EVCTL" lock acquire l --owner $$
: >"$_SCRATCH/stop"
bg_expect "$filler" 0
wait_until "[[ \$(show_field big state) == '8192/8192 free' ]]" ||
        fail "the holds of the filler did not come back: $(show_field big state)"
expect_exit 0 "$EVCTL" sem acquire big --owner $$

exit 0
