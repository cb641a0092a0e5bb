#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# evctl-output.sh - what evctl prints can be trusted and read back: write
# errors on standard output are reported (exit 8), not lost; --json is JSON
# whatever the bytes of a value ("value" text or null, "value_base64" the
# exact bytes); the escaped values of list, show and watch decode to the
# bytes that were set; messages that repeat user input stay on one line.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_python

# run_to TARGET CMD...: as run, with standard output going to TARGET
# (/dev/full, or "closed" for >&-).
run_to() {
        local target=$1
        shift
        LAST_CMD="$(_q "$@") >$target"
        LAST_RC=0
        : >"$LAST_OUT_F"
        if [[ $target == closed ]]; then
                timeout -k 2 "$T_CALL" "$@" >&- 2>"$LAST_ERR_F" </dev/null || LAST_RC=$?
        else
                timeout -k 2 "$T_CALL" "$@" >"$target" 2>"$LAST_ERR_F" </dev/null || LAST_RC=$?
        fi
        LAST_ERR=$(tr -d '\0' <"$LAST_ERR_F")
}

# expect_write_error TARGET CAUSE CMD...: CMD exits 8 with one line naming
# standard output and CAUSE.
expect_write_error() {
        local target=$1 cause=$2
        shift 2
        run_to "$target" "$@"
        ((LAST_RC == 8)) || fail "expected exit 8 (write error), got $LAST_RC
$(_show_last)"
        expect_one_error_line
        expect_stderr_match "standard output: $cause"
}

# The decoder of the escaping documented in evctl(1), OUTPUT: \\ \n \t \r
# and \xHH; every other character stands for its UTF-8 bytes.
cat >"$_SCRATCH/unescape.py" <<'EOF'
import re

def unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        n = text[i + 1]
        if n == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
            continue
        out.append({"\\": 0x5C, "n": 0x0A, "t": 0x09, "r": 0x0D}[n])
        i += 2
    return bytes(out)
EOF

evd_setup

# ---- write errors -------------------------------------------------------------
check "a full disk on standard output: exit 8 with the cause, for every command that prints"
expect_exit 0 "$EVCTL" set a --value hello
expect_exit 0 "$EVCTL" sem create s --max 2
expect_write_error /dev/full 'No space left on device' "$EVCTL" wait a
expect_write_error /dev/full 'No space left on device' "$EVCTL" wait a --timeout 0
expect_write_error /dev/full 'No space left on device' "$EVCTL" wait --any a b --timeout 0
expect_write_error /dev/full 'No space left on device' "$EVCTL" list
expect_write_error /dev/full 'No space left on device' "$EVCTL" list --json
expect_write_error /dev/full 'No space left on device' "$EVCTL" show a
expect_write_error /dev/full 'No space left on device' "$EVCTL" show a --json
expect_write_error /dev/full 'No space left on device' "$EVCTL" sem value s
expect_write_error /dev/full 'No space left on device' "$EVCTL" barrier wait b1 --parties 1
expect_write_error /dev/full 'No space left on device' "$EVCTL" --help
expect_write_error /dev/full 'No space left on device' "$EVCTL" --version
expect_write_error /dev/full 'No space left on device' "$EVCTL" wait --help
expect_write_error /dev/full 'No space left on device' "$EVCTL" sem run --help
check "a listing longer than stdio's buffer, to a full disk: exit 8"
for i in $(seq 1 40); do
        expect_exit 0 "$EVCTL" set "big$i" --value "$(rand_str 3000)"
done
expect_write_error /dev/full 'No space left on device' "$EVCTL" list
expect_write_error /dev/full 'No space left on device' "$EVCTL" list --json
check "an auto event consumed by a wait whose value could not be written: exit 8"
expect_exit 0 "$EVCTL" set au --auto --value gone
expect_write_error /dev/full 'No space left on device' "$EVCTL" wait au --auto --timeout 0
expect_exit 1 "$EVCTL" is-set au

check "standard output closed: exit 8 when something was to be printed, 0 when not"
expect_write_error closed 'Bad file descriptor' "$EVCTL" list
expect_write_error closed 'Bad file descriptor' "$EVCTL" wait a
run_to closed "$EVCTL" is-set a
((LAST_RC == 0)) || fail "is-set with stdout closed: expected 0, got $LAST_RC
$(_show_last)"
expect_no_stderr
run_to closed "$EVCTL" set a --value again
((LAST_RC == 0)) || fail "set with stdout closed: expected 0, got $LAST_RC
$(_show_last)"
check "...and the namespace is intact after it (the listing never lands in the segment)"
expect_exit 0 "$EVCTL" wait a --timeout 0
expect_stdout again
expect_exit 0 "$EVCTL" list
expect_stdout_match '^a +event'

check "watch stops with exit 8 once it cannot write (set until it notices)"
expect_exit 0 "$EVCTL" create wf
_BGN=$((_BGN + 1))
timeout -k 2 30 "$EVCTL" watch wf >/dev/full 2>"$_SCRATCH/watch.err" </dev/null &
w=$!
_GROUPS+=("$w")
i=0
while alive "$w"; do
        i=$((i + 1))
        ((i < 2000)) || fail "watch wf >/dev/full still runs after $i sets"
        timeout -k 1 5 "$EVCTL" set wf --value "v$i" && timeout -k 1 5 "$EVCTL" clear wf ||
                fail "set/clear wf failed"
done
rc=0
wait "$w" || rc=$?
((rc == 8)) || fail "watch wf >/dev/full exited $rc, want 8; stderr: $(cat "$_SCRATCH/watch.err")"
[[ $(nlines "$_SCRATCH/watch.err") == 1 ]] && grep -q '^evctl: cannot write to standard output: No space left on device$' "$_SCRATCH/watch.err" ||
        fail "watch's write error is not one line naming the cause: $(cat "$_SCRATCH/watch.err")"

# ---- JSON ------------------------------------------------------------------------
# The values: each is set from a file of exactly its bytes, as evN.
"$PY" - "$_SCRATCH" <<'EOF'
import os, sys
vals = [
    b"",
    b"plain ascii",
    b"\x00",
    b"a\x00b",
    b"\xff",
    "\u00ff".encode(),            # a real y-diaeresis: not the same as \xff
    b"a\xffb",
    b"\xc3",                      # a truncated sequence
    b"\xc3\x28",                  # a bad continuation byte
    b"\xc0\xaf",                  # an overlong '/'
    b"\xed\xa0\x80",              # a surrogate
    b"\xf4\x90\x80\x80",          # above U+10FFFF
    b"\x80",                      # a stray continuation byte
    "caf\u00e9 \u20ac \U0001d11e \u65e5\u672c".encode(),
    b"\x01\x1f\x7f\x1b[31mred",
    "\u0085\u009b".encode(),      # C1 controls
    b"a\\nb",                     # backslash, n
    b"a\nb",                      # newline
    b"tab\there\rcr",
    b'quote " backslash \\ slash /',
    b"\\x41",                     # looks like an escape
    bytes(range(256)),
    os.urandom(4096),
]
for i, v in enumerate(vals):
    with open(os.path.join(sys.argv[1], "ev%d.bin" % i), "wb") as f:
        f.write(v)
EOF
nvals=$(find "$_SCRATCH" -name 'ev*.bin' | wc -l)
for ((i = 0; i < nvals; i++)); do
        expect_exit 0 "$EVCTL" set "ev$i" --value-file "$_SCRATCH/ev$i.bin"
done

check "list --json and show --json: valid JSON, value text or null, value_base64 exact ($nvals values)"
expect_exit 0 "$EVCTL" list --json
cp "$LAST_OUT_F" "$_SCRATCH/list.json"
for ((i = 0; i < nvals; i++)); do
        expect_exit 0 "$EVCTL" show "ev$i" --json
        cp "$LAST_OUT_F" "$_SCRATCH/show$i.json"
done
"$PY" - "$_SCRATCH" "$nvals" <<'EOF' || fail "JSON output does not follow the policy"
import base64, json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
with open(os.path.join(d, "list.json"), "rb") as f:
    raw = f.read()
objs = {o["name"]: o for o in json.loads(raw.decode("utf-8"))}  # strict UTF-8, strict JSON
for i in range(n):
    want = open(os.path.join(d, "ev%d.bin" % i), "rb").read()
    with open(os.path.join(d, "show%d.json" % i), "rb") as f:
        shown = json.loads(f.read().decode("utf-8"))
    for where, o in (("list", objs["ev%d" % i]), ("show", shown)):
        got = base64.b64decode(o["value_base64"], validate=True)
        assert got == want, "%s ev%d: value_base64 gives %r, want %r" % (where, i, got[:40], want[:40])
        try:
            text = want.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        assert o["value"] == text, "%s ev%d: value %r, want %r" % (where, i, o["value"], text)
# 0xff and a real U+00FF can be told apart
assert objs["ev4"]["value"] is None and objs["ev5"]["value"] == "\u00ff"
# every object has value_base64 when it is an event
for o in objs.values():
    if o["type"] == "event":
        assert "value_base64" in o, o
EOF

# ---- reversible text -------------------------------------------------------------
check "show: the escaped value decodes to the exact bytes; a\\nb and a<LF>b differ"
for ((i = 0; i < nvals; i++)); do
        expect_exit 0 "$EVCTL" show "ev$i"
        cp "$LAST_OUT_F" "$_SCRATCH/show$i.txt"
done
"$PY" - "$_SCRATCH" "$nvals" <<'EOF' || fail "show's values do not decode to what was set"
import os, sys
sys.path.insert(0, sys.argv[1])
from unescape import unescape
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    want = open(os.path.join(d, "ev%d.bin" % i), "rb").read()
    lines = open(os.path.join(d, "show%d.txt" % i), "rb").read().decode("utf-8").split("\n")
    assert lines[-1] == "", "show ev%d does not end in a newline" % i
    vl = [l for l in lines if l.startswith("value: ")]
    assert len(vl) == 1 and lines[-2] == vl[0], "show ev%d: the value is not one last line: %r" % (i, lines)
    got = unescape(vl[0][len("value: "):])
    assert got == want, "show ev%d: %r decodes to %r, want %r" % (i, vl[0][:60], got[:40], want[:40])
    assert all(c >= " " and c != "\x7f" and not ("\x80" <= c < "\xa0") for c in vl[0]), \
        "show ev%d prints a control character: %r" % (i, vl[0])
EOF
[[ $(sed -n 's/^value: //p' "$_SCRATCH/show16.txt") != $(sed -n 's/^value: //p' "$_SCRATCH/show17.txt") ]] ||
        fail "show prints a\\nb and a<LF>b the same way"

check "list: short values decode to the exact bytes"
expect_exit 0 "$EVCTL" list
"$PY" - "$_SCRATCH" "$nvals" "$LAST_OUT_F" <<'EOF' || fail "list's values do not decode to what was set
$(_show_last)"
import os, re, sys
sys.path.insert(0, sys.argv[1])
from unescape import unescape
d, n = sys.argv[1], int(sys.argv[2])
rows = {}
for line in open(sys.argv[3], "rb").read().decode("utf-8").split("\n")[1:]:
    m = re.match(r"^(\S+) +event +\S+ +\S+ +\d+ (.*)$", line)
    if m:
        rows[m.group(1)] = m.group(2)
checked = 0
for i in range(n):
    want = open(os.path.join(d, "ev%d.bin" % i), "rb").read()
    if len(want) > 48:
        continue
    got = unescape(rows["ev%d" % i])
    assert got == want, "list ev%d: %r decodes to %r, want %r" % (i, rows["ev%d" % i], got, want)
    checked += 1
assert rows["ev16"] != rows["ev17"], "list prints a\\nb and a<LF>b the same way"
assert checked >= 15, checked
EOF

check "watch: set lines decode to the exact bytes, for a\\nb and a<LF>b"
# Set again and again (never clear: a set and a clear between two looks
# print a set line without its value) until watch has seen one.
for i in 16 17 3 6 14; do
        bg_start 30 "$EVCTL" watch "ev$i" --count 1
        w=$BG_PID
        n=0
        while alive "$w"; do
                n=$((n + 1))
                ((n < 2000)) || fail "watch ev$i saw none of $n sets"
                timeout -k 1 5 "$EVCTL" set "ev$i" --value-file "$_SCRATCH/ev$i.bin" ||
                        fail "set ev$i failed"
        done
        bg_expect "$w" 0
        "$PY" - "$_SCRATCH" "$i" "$(bg_out "$w")" <<'EOF' || fail "watch's value for ev$i does not decode
$(bg_show "$w")"
import os, re, sys
sys.path.insert(0, sys.argv[1])
from unescape import unescape
d, i = sys.argv[1], int(sys.argv[2])
want = open(os.path.join(d, "ev%d.bin" % i), "rb").read()
line = open(sys.argv[3], "rb").read().decode("utf-8").split("\n")[0]
m = re.match(r"^\S+ ev%d set (.*)$" % i, line)
assert m, "not a set line: %r" % line
assert unescape(m.group(1)) == want, (line, want)
EOF
done

# ---- messages ----------------------------------------------------------------------
check "messages that repeat user input stay on one line, control bytes escaped"
expect_error 2 "a\\\\nb" "$EVCTL" set $'a\nb'
expect_error 2 "\\\\x1b\\[31m" "$EVCTL" set $'x\e[31m'
expect_error 2 "--timeout" "$EVCTL" wait a --timeout $'1\n2'
expect_error 2 "value-file" "$EVCTL" set a --value-file $'/nonexistent/a\nb'
expect_error 2 "" "$EVCTL" wait a $'--bogus\noption'
expect_error 2 "" "$EVCTL" $'bo\ngus'
expect_exit 0 "$EVCTL" fail fm $'two\nlines\e[0m'
expect_error 3 '^evctl: fm failed: two\\nlines\\x1b\[0m$' "$EVCTL" wait fm --timeout 0
expect_error 127 'cannot run' "$EVCTL" lock run lk $'/no/such\ncommand'

alive "$EVD_PID" || fail "evd died"
exit 0
