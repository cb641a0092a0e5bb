#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# unitexec.py - run the Exec*= command lines of a unit file (or drop-in) the
# way systemd would, so that tests exercise the shipped examples themselves
# rather than copies of their commands.  No systemd runs in the test
# containers, so this does what systemd does to a command line:
#
#   - specifiers: %% -> %, %i / %I -> the instance (--instance), %n -> the
#     unit's name; any other specifier is an error;
#   - quoting: words split at whitespace, "..." and '...' quote, C escapes
#     (\n \t \\ \" \' \xHH \s) are unescaped, in and out of quotes;
#   - prefixes @ - : + ! !! are stripped ('-' makes a failure non-fatal);
#   - environment, when the command runs: $$ -> $, ${NAME} anywhere in a
#     word -> its value, a word that is exactly $NAME -> its value split at
#     whitespace.  A bare $NAME inside a longer word is refused: systemd's
#     handling of it is a trap, write $$NAME (for the shell) or ${NAME};
#   - Environment= lines of the file (later ones win) on top of ours, then
#     --env K=V on top of those (the test's port, timeout ...);
#   - a bare program name is looked up in PATH (systemd uses a fixed path
#     that contains the usual bin directories).
#
# Usage: unitexec.py [--env K=V]... [--instance I] [--print] FILE KEY
#   Runs every KEY= line of FILE in order, as systemd runs ExecStartPre=,
#   ExecStartPost= and ExecStopPost=: the first failure (unless '-') ends it
#   with that command's status; the last command is exec'ed, so signals and
#   the exit status are its own.  --print shows the argv lists as JSON.
import json
import os
import re
import shutil
import sys


def die(msg):
    print(f"unitexec: {msg}", file=sys.stderr)
    sys.exit(2)


def read_unit(path):
    """[(section, key, value)] with continuation lines joined."""
    out, section, pending = [], None, None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for raw in lines:
        line = raw.strip() if pending is None else raw
        if pending is None and (not line or line[0] in "#;"):
            continue
        if pending is not None:
            if raw.lstrip()[:1] in ("#", ";"):
                continue  # comments inside a continuation are skipped
            line = pending + " " + raw.strip()
            pending = None
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if "=" not in line:
            die(f"{path}: not a key=value line: {line!r}")
        k, v = line.split("=", 1)
        out.append((section, k.strip(), v.strip()))
    return out


def specifiers(s, instance, unit):
    def rep(m):
        c = m.group(1)
        if c == "%":
            return "%"
        if c in "iI":
            if instance is None:
                die(f"%{c} needs --instance")
            return instance
        if c == "n":
            return unit
        die(f"unsupported specifier %{c} in {s!r}")
    return re.sub(r"%(.)", rep, s)


ESC = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "s": " ", "a": "\a",
       "b": "\b", "f": "\f", "r": "\r", "v": "\v", ";": ";"}


def split_words(s):
    words, cur, quote, i, have = [], [], None, 0, False
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                try:
                    cur.append(chr(int(s[i + 2:i + 4], 16)))
                except ValueError:
                    die(f"bad \\x escape in {s!r}")
                i += 4
            elif n in ESC:
                cur.append(ESC[n])
                i += 2
            else:
                die(f"unknown escape \\{n} in {s!r}")
            have = True
            continue
        if quote:
            if c == quote:
                quote = None
            else:
                cur.append(c)
        elif c in "\"'":
            quote, have = c, True
        elif c.isspace():
            if have:
                words.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(c)
            have = True
        i += 1
    if quote:
        die(f"unterminated quote in {s!r}")
    if have:
        words.append("".join(cur))
    return words


def expand(words, env):
    out = []
    for w in words:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            out.extend(env.get(m.group(1), "").split())
            continue
        res, i = [], 0
        while i < len(w):
            if w.startswith("$$", i):
                res.append("$")
                i += 2
            elif w.startswith("${", i):
                j = w.find("}", i)
                if j < 0:
                    die(f"unterminated ${{ in {w!r}")
                res.append(env.get(w[i + 2:j], ""))
                i = j + 1
            elif w[i] == "$" and i + 1 < len(w) and (w[i + 1].isalpha() or w[i + 1] == "_"):
                die(f"bare ${w[i + 1:].split()[0]} inside the word {w!r}: write $$ (shell) or ${{}} (systemd)")
            else:
                res.append(w[i])
                i += 1
        out.append("".join(res))
    return out


def main():
    args = sys.argv[1:]
    overrides, instance, show = {}, None, False
    while args and args[0].startswith("--"):
        a = args.pop(0)
        if a == "--env":
            k, v = args.pop(0).split("=", 1)
            overrides[k] = v
        elif a == "--instance":
            instance = args.pop(0)
        elif a == "--print":
            show = True
        else:
            die(f"unknown option {a}")
    if len(args) != 2:
        die("usage: unitexec.py [--env K=V]... [--instance I] [--print] FILE KEY")
    path, key = args
    unit = os.path.basename(path)
    if instance is not None and "@." in unit:
        unit = unit.replace("@.", f"@{instance}.")
    entries = read_unit(path)
    env = dict(os.environ)
    for sec, k, v in entries:
        if sec == "Service" and k == "Environment":
            for w in split_words(specifiers(v, instance, unit)):
                if "=" not in w:
                    die(f"bad Environment= assignment {w!r}")
                n, val = w.split("=", 1)
                env[n] = val
    env.update(overrides)
    cmds = []
    for sec, k, v in entries:
        if sec != "Service" or k != key:
            continue
        if v == "":
            cmds = []  # an empty assignment resets the list
            continue
        m = re.match(r"[-@:+!]*", v)
        prefix, rest = m.group(0), v[m.end():]
        words = expand(split_words(specifiers(rest, instance, unit)), env)
        if not words:
            die(f"empty command in {key}={v}")
        if "@" in prefix:
            die("the @ prefix (argv[0] override) is not supported")
        cmds.append(("-" in prefix, words))
    if not cmds:
        die(f"no {key}= in {path}")
    if show:
        print(json.dumps([w for _, w in cmds]))
        return 0
    for n, (may_fail, words) in enumerate(cmds):
        prog = words[0] if words[0].startswith("/") else shutil.which(words[0], path=env.get("PATH"))
        if not prog:
            die(f"{words[0]}: not found in PATH")
        sys.stdout.flush()
        if n == len(cmds) - 1:
            try:
                os.execve(prog, words, env)
            except OSError as e:
                die(f"cannot run {prog}: {e}")
        pid = os.fork()
        if pid == 0:
            try:
                os.execve(prog, words, env)
            finally:
                os._exit(127)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 and not may_fail:
            print(f"unitexec: {key}={' '.join(words)} failed with status {code}", file=sys.stderr)
            return code if code > 0 else 128 - code
    return 0


if __name__ == "__main__":
    sys.exit(main())
