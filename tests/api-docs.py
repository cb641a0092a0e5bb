#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""api-docs.py - the public header, the exported symbols and libevd(3) must
agree, so that they cannot drift apart:

  - every function evd.h declares is exported by libevd.sym, and the other
    way round;
  - every exported function has a prototype in the manual's SYNOPSIS equal
    to the header's (types and parameter names, whitespace aside) and an
    entry of its own under FUNCTIONS;
  - every EVD_ constant of the header is named in the manual;
  - the error codes the header's list gives are those of the manual's
    ERRORS table, and every code the header names for a function is named
    in that function's entry in the manual.

Usage: api-docs.py SOURCE_ROOT
       api-docs.py --self-test SOURCE_ROOT   (each kind of drift, injected
                                             into a copy, must be caught)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def fail(problems):
    for p in problems:
        print("api-docs: " + p, file=sys.stderr)
    print("api-docs: %d problem(s)" % len(problems), file=sys.stderr)
    sys.exit(1)


def norm(proto):
    """A prototype with comments gone and whitespace made canonical."""
    proto = re.sub(r"/\*.*?\*/", " ", proto, flags=re.S)
    proto = re.sub(r"\s+", " ", proto).strip()
    proto = re.sub(r"\s*([(),*;])\s*", r"\1", proto)
    return proto


def declarations(text):
    """[(name, normalised prototype, comment above it)] for each function
    declared in TEXT: a declaration starts at column 0 with its return type
    and ends with ");", possibly lines later."""
    out = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if not re.match(r"(const |int |void |evd_\w+ \*|enum \w+ evd_|struct \w+ \*|uint\w+ )", lines[i]):
            i += 1
            continue
        start = i
        while not lines[i].rstrip().endswith(");"):
            i += 1
        proto = " ".join(lines[start:i + 1])
        name = re.search(r"\b(evd_\w+)\s*\(", proto).group(1)
        # Its own comment: the block that ends right above it, unless
        # another declaration is in between (it shares that one's) or the
        # block heads a section ("/* ---- ").
        k = start
        while k > 0 and lines[k - 1].strip() and not lines[k - 1].rstrip().endswith(");"):
            k -= 1
        comment = "\n".join(lines[k:start])
        if comment.startswith("/* ----") or (k > 0 and lines[k - 1].rstrip().endswith(");")):
            comment = ""
        out.append((name, norm(proto), comment))
        i += 1
    return out


def header_functions(text):
    return {n: (p, c) for n, p, c in declarations(text)}


def man_sections(text):
    """The manual split into its '# ' sections."""
    sections, cur = {}, None
    for line in text.split("\n"):
        if line.startswith("# "):
            cur = line[2:].strip()
            sections[cur] = []
        elif cur:
            sections[cur].append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def man_synopsis(section):
    block = re.search(r"```\n(.*?)```", section, flags=re.S).group(1)
    return {n: p for n, p, _ in declarations(block)}


def man_entries(section):
    """{name: entry text} from the FUNCTIONS section: an entry starts with a
    line naming one or more functions (*evd_x*(...)) and runs to the next."""
    out = {}
    names, body = [], []

    def flush():
        for n in names:
            out[n] = out.get(n, "") + "\n".join(body)

    for line in section.split("\n"):
        heads = re.findall(r"\*(evd_\w+)\*\(", line) if not line.startswith("\t") else []
        if heads and not line.startswith("\t"):
            flush()
            names, body = heads, [line]
        elif line.startswith("## "):
            flush()
            names, body = [], []
        else:
            body.append(line)
    flush()
    return out


def codes(text):
    return set(re.findall(r"-(E[A-Z]+)\b", text))


def self_test(root):
    """Inject one drift at a time into a copy of the three files and check
    that the checker (this file, run as a program) refuses each."""
    drifts = [
        ("lib/libevd.sym", r"^\s*evd_version;\n", ""),
        ("man/libevd.3.scd", r"int evd_sem_release\(evd_sem \*sem, pid_t owner, uint32_t n\);",
         "int evd_sem_release(evd_sem *sem, pid_t owner);"),
        ("include/evd.h", r"-EUSERS \(the\n \* namespace's holder table is full\)",
         "-ENOSPC (the\n * namespace's holder table is full)"),
        ("man/libevd.3.scd", r"\|  -EUSERS\n", "|  -EXDEV\n"),
        ("man/libevd.3.scd", r"EVD_OPEN_INTERRUPTIBLE", "EVD_OPEN_INTERRUPTABLE"),
    ]
    files = ("include/evd.h", "lib/libevd.sym", "man/libevd.3.scd")
    # Without a drift the checker must pass, or catching one proves nothing.
    if subprocess.run([sys.executable, __file__, root], capture_output=True).returncode != 0:
        print("api-docs self-test: the tree itself does not pass", file=sys.stderr)
        sys.exit(1)
    ok = True
    for path, pattern, repl in drifts:
        with tempfile.TemporaryDirectory() as tmp:
            for f in files:
                os.makedirs(os.path.dirname(os.path.join(tmp, f)), exist_ok=True)
                shutil.copy(os.path.join(root, f), os.path.join(tmp, f))
            text = open(os.path.join(tmp, path)).read()
            changed, n = re.subn(pattern, repl, text, flags=re.M)
            if n == 0:
                print("api-docs self-test: pattern %r not found in %s" % (pattern, path), file=sys.stderr)
                ok = False
                continue
            open(os.path.join(tmp, path), "w").write(changed)
            r = subprocess.run([sys.executable, __file__, tmp], capture_output=True, text=True)
            if r.returncode == 0:
                print("api-docs self-test: drift in %s (%s) was not caught" % (path, pattern),
                      file=sys.stderr)
                ok = False
            else:
                print("caught: " + r.stderr.strip().split("\n")[0])
    sys.exit(0 if ok else 1)


def main():
    if sys.argv[1] == "--self-test":
        self_test(sys.argv[2])
    root = sys.argv[1]
    header = open(root + "/include/evd.h").read()
    sym = open(root + "/lib/libevd.sym").read()
    man = open(root + "/man/libevd.3.scd").read()
    problems = []

    exported = set(re.findall(r"^\s*(evd_\w+);", sym, flags=re.M))
    declared = header_functions(header)
    for n in sorted(set(declared) - exported):
        problems.append("%s is declared in evd.h but not exported by libevd.sym" % n)
    for n in sorted(exported - set(declared)):
        problems.append("%s is exported by libevd.sym but not declared in evd.h" % n)

    sections = man_sections(man)
    for s in ("SYNOPSIS", "FUNCTIONS", "ERRORS"):
        if s not in sections:
            problems.append("libevd.3.scd has no %s section" % s)
    if problems:
        fail(problems)
    synopsis = man_synopsis(sections["SYNOPSIS"])
    entries = man_entries(sections["FUNCTIONS"])

    for n in sorted(exported & set(declared)):
        proto, comment = declared[n]
        if n not in synopsis:
            problems.append("%s is missing from the manual's SYNOPSIS" % n)
        elif synopsis[n] != proto:
            problems.append("%s: SYNOPSIS says '%s', evd.h says '%s'" % (n, synopsis[n], proto))
        if n not in entries:
            problems.append("%s has no entry under the manual's FUNCTIONS" % n)
            continue
        missing = codes(comment) - codes(entries[n])
        if missing:
            problems.append("%s: evd.h names %s, its entry in the manual does not" %
                            (n, ", ".join("-" + c for c in sorted(missing))))

    for c in sorted(set(re.findall(r"\b(EVD_[A-Z0-9_]+)\b", header)) - {"EVD_H"}):
        if c not in man:
            problems.append("the manual never names %s" % c)

    errblock = re.search(r"/\* ---- errors -+\n(.*?)\*/", header, flags=re.S)
    if not errblock:
        problems.append("evd.h has no '---- errors' block")
    else:
        hcodes, mcodes = codes(errblock.group(1)), codes(sections["ERRORS"])
        for c in sorted(hcodes - mcodes):
            problems.append("-%s is in evd.h's error list but not in the manual's ERRORS" % c)
        for c in sorted(mcodes - hcodes):
            problems.append("-%s is in the manual's ERRORS but not in evd.h's error list" % c)

    if problems:
        fail(problems)
    print("api-docs: %d functions, header, symbols and manual agree" % len(exported))


main()
