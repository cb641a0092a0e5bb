#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# list-table.sh - `evctl list` as util-linux tools print tables: columns as
# wide as what they hold (64-byte names included, checked cell by cell
# against --json), --no-legend, --output (chosen columns, +COLUMNS, help, and
# an error naming the valid ones), --raw (lines that split on spaces, values
# escaped as \xHH that decode to the exact bytes, NUL included), and the
# options that exclude each other.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_python

evd_setup
# Text is shown as UTF-8 in a UTF-8 locale (checked below in C as well).
export LC_ALL=C.UTF-8

long=$(printf 'L%.0s' {1..63})x # 64 bytes, the longest name there is
[[ ${#long} == 64 ]] || fail "test bug: long name is ${#long} bytes"

check "an empty namespace: the header alone"
expect_exit 0 "$EVCTL" list
[[ $(tr -s ' ' <"$LAST_OUT_F") == "NAME TYPE KIND STATE WAITERS VALUE" ]] ||
        fail "empty list is not the header alone
$(_show_last)"
expect_exit 0 "$EVCTL" list --no-legend
expect_no_stdout

# Objects of every kind, with values that need escaping.
expect_exit 0 "$EVCTL" set "$long" --value "127.0.0.1:6379"
expect_exit 0 "$EVCTL" set sp --value "a b  c"
printf 'back\\slash\ttab\nnl é \001 \377' >"$_SCRATCH/odd"
expect_exit 0 "$EVCTL" set odd --value-file "$_SCRATCH/odd"
printf 'nul\000byte' >"$_SCRATCH/nul"
expect_exit 0 "$EVCTL" set nul --value-file "$_SCRATCH/nul"
expect_exit 0 "$EVCTL" create e --once
expect_exit 0 "$EVCTL" fail f "went wrong"
expect_exit 0 "$EVCTL" sem create builds --max 4
bg_start 300 sleep 290
owner=$BG_PID
expect_exit 0 "$EVCTL" sem acquire builds --owner "$owner"
expect_exit 0 "$EVCTL" sem acquire builds --owner "$owner"
expect_exit 0 "$EVCTL" lock acquire deploy --owner "$owner"
expect_exit 0 "$EVCTL" sem create counter --unbounded --initial 12345
expect_exit 0 "$EVCTL" list --json
cp "$LAST_OUT_F" "$_SCRATCH/list.json"

# table.py TABLE JSON [--no-legend] [--output COLS]: every row of TABLE holds
# exactly the object of the same rank in JSON, each cell starting (left
# aligned) or ending (right aligned: WAITERS, SETS) at its header's edge, and
# the first columns exactly as wide as their widest cell.
cat >"$_SCRATCH/table.py" <<'PYEOF'
import json, sys
table, js = sys.argv[1], sys.argv[2]
legend = "--no-legend" not in sys.argv
ascii = "--ascii" in sys.argv # a locale that is not UTF-8: non-ASCII as \xHH
cols = ["NAME", "TYPE", "KIND", "STATE", "WAITERS", "VALUE"]
if "--output" in sys.argv:
    cols = sys.argv[sys.argv.index("--output") + 1].upper().split(",")
objs = json.load(open(js))
lines = open(table, encoding="utf-8").read().split("\n")
assert lines[-1] == "", "no newline at the end"
lines = lines[:-1]

def esc(b):
    out = ""
    s = b.decode("utf-8", "surrogateescape")
    for ch in s:
        o = ord(ch)
        if 0xdc80 <= o <= 0xdcff:
            out += "\\x%02x" % (o - 0xdc00)
        elif ch == "\n": out += "\\n"
        elif ch == "\t": out += "\\t"
        elif ch == "\r": out += "\\r"
        elif o < 0x20 or 0x7f <= o < 0xa0:
            out += "".join("\\x%02x" % c for c in ch.encode())
        elif ch == "\\": out += "\\\\"
        elif ascii and o > 0x7f:
            out += "".join("\\x%02x" % c for c in ch.encode())
        else: out += ch
    return out

def cell(o, c):
    import base64
    brief = {"semaphore": "sem", "condition": "cond"}.get(o["type"], o["type"])
    if c == "NAME": return o["name"]
    if c == "TYPE": return brief
    if c == "KIND": return o.get("kind", "-")
    if c == "STATE":
        if o["type"] == "event": return o["state"]
        if o["type"] == "semaphore":
            return "%d free, unbounded" % o["free"] if o["unbounded"] else "%d/%d free" % (o["free"], o["max"])
        if o["type"] == "lock": return "free" if o["free"] else "held"
    if c == "WAITERS": return str(o["waiters"])
    if c == "SETS": return str(o.get("sets", o.get("acquires")))
    if c == "CHANGED": return o["changed"]
    if c == "VALUE":
        if o["type"] != "event":
            hs = o.get("holders", [])
            return ", ".join("pid %d" % h["pid"] + (" (%d)" % h["count"] if h["count"] > 1 else "") for h in hs)
        v = base64.b64decode(o["value_base64"])
        return esc(v[:45]) + "..." if len(v) > 48 else esc(v)
    raise SystemExit("unknown column " + c)

right = {"WAITERS", "SETS"}
if legend:
    head = lines.pop(0)
    starts = []
    pos = 0
    for c in cols:
        i = head.index(c, pos)
        starts.append(i)
        pos = i + len(c)
    assert head.split() == cols, "header %r" % head
else:
    starts = None
assert len(lines) == len(objs), "%d rows for %d objects" % (len(lines), len(objs))
cells = [[cell(o, c) for c in cols] for o in objs]
# Column k spans [edge k, edge k+1 - 1): widths are the widest cell or
# header (libsmartcols counts the header with --no-legend too, so that the
# columns do not move when it is left out).
width = [max([len(r[k]) for r in cells] + [len(cols[k])]) for k in range(len(cols))]
edges = [0]
for w in width[:-1]:
    edges.append(edges[-1] + w + 1)
if starts is not None:
    for k, c in enumerate(cols):
        want = edges[k] + (width[k] - len(c) if c in right else 0)
        assert starts[k] == want, "header %s at column %d, want %d (widths %s): %r" % (c, starts[k], want, width, head)
for line, row in zip(lines, cells):
    for k, c in enumerate(cols):
        last = k == len(cols) - 1
        seg = line[edges[k]:] if last else line[edges[k]:edges[k] + width[k]]
        if not last:
            assert line[edges[k] + width[k]] == " ", "no separator after %s in %r" % (c, line)
        got = seg.rstrip(" ") if c not in right else seg.strip(" ")
        if c in right and not last:
            assert seg == seg.lstrip(" ").rjust(width[k]), "%s not right-aligned in %r" % (c, line)
        if last:
            got = seg.rstrip(" ") if c not in right else seg.strip(" ")
        assert got == row[k], "%s is %r, want %r, in %r" % (c, got, row[k], line)
print("%d rows, widths %s" % (len(lines), width))
PYEOF

check "list: columns as wide as their widest cell (a 64-byte name), every cell where its header is"
expect_exit 0 "$EVCTL" list
cp "$LAST_OUT_F" "$_SCRATCH/list.txt"
"$PY" "$_SCRATCH/table.py" "$_SCRATCH/list.txt" "$_SCRATCH/list.json" ||
        fail "list is not aligned
$(cat "$_SCRATCH/list.txt")"
head -n 1 "$_SCRATCH/list.txt" | grep -E '^NAME {61}TYPE ' >/dev/null ||
        fail "the NAME column is not exactly as wide as the 64-byte name"

check "list in the C locale: non-ASCII bytes as \\xHH, still aligned (libsmartcols would loop on them)"
LC_ALL=C expect_exit 0 "$EVCTL" list
cp "$LAST_OUT_F" "$_SCRATCH/list-c.txt"
"$PY" "$_SCRATCH/table.py" "$_SCRATCH/list-c.txt" "$_SCRATCH/list.json" --ascii ||
        fail "list in the C locale is not aligned or not escaped
$(cat "$_SCRATCH/list-c.txt")"
grep -q '\\xc3\\xa9' "$_SCRATCH/list-c.txt" || fail "é is not \\xc3\\xa9 in the C locale"
grep -q 'é' "$_SCRATCH/list.txt" || fail "é is not shown as it is in a UTF-8 locale"

check "list --no-legend: the same rows without the header"
expect_exit 0 "$EVCTL" list --no-legend
tail -n +2 "$_SCRATCH/list.txt" | cmp -s - "$LAST_OUT_F" ||
        fail "list --no-legend is not list without its first line
$(_show_last)"
expect_exit 0 "$EVCTL" list --no-headings
tail -n +2 "$_SCRATCH/list.txt" | cmp -s - "$LAST_OUT_F" || fail "--no-headings differs from --no-legend"

check "columns shrink with their content: without the long name, NAME is as wide as 'counter'"
expect_exit 0 "$EVCTL" delete "$long"
expect_exit 0 "$EVCTL" list --json
cp "$LAST_OUT_F" "$_SCRATCH/list2.json"
expect_exit 0 "$EVCTL" list
cp "$LAST_OUT_F" "$_SCRATCH/list2.txt"
"$PY" "$_SCRATCH/table.py" "$_SCRATCH/list2.txt" "$_SCRATCH/list2.json" ||
        fail "list is not aligned
$(cat "$_SCRATCH/list2.txt")"
head -n 1 "$LAST_OUT_F" | grep '^NAME    TYPE ' >/dev/null || fail "NAME is not 7 wide (counter)
$(_show_last)"
expect_exit 0 "$EVCTL" set "$long" --value "127.0.0.1:6379"
expect_exit 0 "$EVCTL" list --json
cp "$LAST_OUT_F" "$_SCRATCH/list.json"

check "list --output: chosen columns in the given order, any case; +COLUMNS adds to the default"
for spec in name,waiters value,NAME,type Sets,changed,Name,state +SETS,CHANGED name; do
        cols=$spec
        [[ $spec == +* ]] && cols=NAME,TYPE,KIND,STATE,WAITERS,VALUE,${spec#+}
        expect_exit 0 "$EVCTL" list --output "$spec"
        cp "$LAST_OUT_F" "$_SCRATCH/out.txt"
        expect_exit 0 "$EVCTL" list --json
        "$PY" "$_SCRATCH/table.py" "$_SCRATCH/out.txt" "$LAST_OUT_F" --output "$cols" ||
                fail "list --output $spec is not aligned or holds the wrong cells
$(cat "$_SCRATCH/out.txt")"
        expect_exit 0 "$EVCTL" list --output "$spec" --no-legend
        cp "$LAST_OUT_F" "$_SCRATCH/out.txt"
        expect_exit 0 "$EVCTL" list --json
        "$PY" "$_SCRATCH/table.py" "$_SCRATCH/out.txt" "$LAST_OUT_F" --output "$cols" --no-legend ||
                fail "list --output $spec --no-legend is wrong
$(cat "$_SCRATCH/out.txt")"
done
expect_exit 0 "$EVCTL" list --output name --no-legend
sort <<<"$(printf '%s\n' "$long" sp odd nul e f builds deploy counter)" | cmp -s - "$LAST_OUT_F" ||
        fail "list --output name --no-legend is not the names, one a line
$(_show_last)"

check "list --output help: every column, the default ones marked; no daemon needed"
EVD_NO_AUTOSTART=1 EVD_RUNTIME_DIR=/nonexistent expect_exit 0 "$EVCTL" list --output help
for c in NAME TYPE KIND STATE WAITERS VALUE SETS CHANGED; do
        expect_stdout_match "^ [ *] $c "
done
[[ $(grep -c '^ \* ' "$LAST_OUT_F") == 6 ]] || fail "not 6 default columns marked
$(_show_last)"

check "bad --output: one error line naming the valid columns (exit 2)"
expect_error 2 "unknown column 'bogus' for --output \(valid: NAME, TYPE, KIND, STATE, WAITERS, VALUE, SETS, CHANGED\)" \
        "$EVCTL" list --output name,bogus
expect_error 2 "empty column" "$EVCTL" list --output name,
expect_error 2 "empty column" "$EVCTL" list --output ""
expect_error 2 "option '--output' needs a value" "$EVCTL" list --output
expect_error 2 "--json excludes --raw" "$EVCTL" list --json --raw
expect_error 2 "--json excludes --output" "$EVCTL" list --output name --json
expect_error 2 "--json excludes --no-legend" "$EVCTL" list --no-legend --json
expect_error 2 "unknown option '--raw'" "$EVCTL" show sp --raw

check "list --raw: one space between columns, every line splits into its fields, values decode to their exact bytes"
for legend in "" --no-legend; do
        expect_exit 0 "$EVCTL" list --raw $legend
        cp "$LAST_OUT_F" "$_SCRATCH/raw.txt"
        "$PY" - "$_SCRATCH/raw.txt" "$_SCRATCH/list.json" "$legend" <<'PYEOF' || fail "list --raw $legend is wrong
$(cat "$_SCRATCH/raw.txt")"
import base64, json, re, sys
raw = open(sys.argv[1], "rb").read()
objs = json.load(open(sys.argv[2]))
lines = raw.split(b"\n")
assert lines[-1] == b"", "no final newline"
lines = lines[:-1]
if sys.argv[3] != "--no-legend":
    assert lines.pop(0) == b"NAME TYPE KIND STATE WAITERS VALUE", "raw header"
assert len(lines) == len(objs), "%d lines for %d objects" % (len(lines), len(objs))
dec = lambda s: re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), s)
for line, o in zip(lines, objs):
    assert re.fullmatch(rb"[\x21-\x7e]+( [\x21-\x7e]*)*", line), "not printable ASCII fields: %r" % line
    assert b"\\" not in re.sub(rb"\\x[0-9a-f]{2}", b"", line), "a bare backslash in %r" % line
    f = line.split(b" ")
    assert len(f) == 6, "%d fields in %r" % (len(f), line)
    assert dec(f[0]).decode() == o["name"], line
    assert int(f[4]) == o["waiters"], line
    if o["type"] == "event":
        assert dec(f[5]) == base64.b64decode(o["value_base64"]), "value %r of %s" % (f[5], o["name"])
        assert f[1] == b"event" and dec(f[2]).decode() == o["kind"] and f[3].decode() == o["state"]
print("raw: %d lines" % len(lines))
PYEOF
done
grep -q '^nul event manual set 0 nul\\x00byte$' "$_SCRATCH/raw.txt" || fail "a NUL byte is not \\x00 in --raw"
grep -q '^sp event manual set 0 a\\x20b\\x20\\x20c$' "$_SCRATCH/raw.txt" || fail "spaces are not \\x20 in --raw"
grep -q '^builds sem - 2/4\\x20free 0 pid\\x20[0-9]*\\x20(2)$' "$_SCRATCH/raw.txt" || fail "the holders of builds in --raw"
expect_exit 0 "$EVCTL" list --raw --output name,type,sets --no-legend
expect_stdout_match '^builds sem 2$'
expect_stdout_match '^deploy lock 1$'
# A shell reads the fields with read(1).
while read -r n t; do
        [[ -n $n && -n $t ]] || fail "'$n' '$t': a line of --raw did not split in two"
done <"$LAST_OUT_F"

check "list still writes errors as before: a full disk is exit 8"
expect_exit 8 bash -c '"$1" list >/dev/full' _ "$EVCTL"
expect_stderr_match 'No space left on device'
expect_exit 8 bash -c '"$1" list --raw >/dev/full' _ "$EVCTL"

say "ok"
