#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# notify.py - a stand-in for the service manager's side of sd_notify: bind a
# datagram socket, run a command with NOTIFY_SOCKET pointing at it, print
# every message received (one per line, fields joined by '|') until the
# command exits or the time limit passes.
#
# Usage: notify.py [--abstract] [--check-barrier] SECONDS OUTFILE -- CMD...
#
# --abstract: the socket is in the abstract namespace (NOTIFY_SOCKET=@name).
# --check-barrier: on BARRIER=1, keep the descriptor that came with it until
#   the command is seen blocked waiting for its close (in poll or ppoll, from
#   /proc/PID/syscall), then close it and log "BARRIER=1 awaited"; a command
#   that exits instead logs "BARRIER=1 not awaited".  Without it the
#   descriptor is closed at once, as the manager does once it has read
#   everything before.
import array
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

args = sys.argv[1:]
abstract = "--abstract" in args[: args.index("--")]
check_barrier = "--check-barrier" in args[: args.index("--")]
opts = [a for a in args[: args.index("--")] if not a.startswith("--")]
secs = float(opts[0])
out = opts[1]
cmd = args[args.index("--") + 1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
d = None
if abstract:
    name = "evd-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
    s.bind("\0" + name)
    addr = "@" + name
else:
    d = tempfile.mkdtemp(prefix="evd-notify.")
    addr = os.path.join(d, "notify")
    s.bind(addr)
s.settimeout(0.1)
env = dict(os.environ, NOTIFY_SOCKET=addr)
p = subprocess.Popen(cmd, env=env)
deadline = time.monotonic() + secs

# poll and ppoll, by architecture.
POLL_CALLS = {"x86_64": {7, 271}, "aarch64": {73}}.get(platform.machine(), set())


def blocked_in_poll(pid):
    """True once PID sleeps in poll; False if it exited first."""
    while time.monotonic() < deadline:
        if p.poll() is not None:
            return False
        try:
            with open("/proc/%d/syscall" % pid) as f:
                nr = f.read().split()[0]
        except (OSError, IndexError):
            return False
        if nr.isdigit() and (int(nr) in POLL_CALLS or not POLL_CALLS):
            return True
        time.sleep(0.01)
    return False


with open(out, "w", buffering=1) as f:
    while time.monotonic() < deadline:
        try:
            fds = array.array("i")
            msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
        except socket.timeout:
            if p.poll() is not None:
                break
            continue
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        text = msg.decode(errors="replace")
        f.write("|".join(text.strip().split("\n")) + "\n")
        if text.strip() == "BARRIER=1" and check_barrier:
            ok = len(fds) == 1 and blocked_in_poll(p.pid)
            f.write("BARRIER=1 %s\n" % ("awaited" if ok else "not awaited"))
        for fd in fds:
            os.close(fd)
    if p.poll() is None:
        p.kill()
    p.wait()
if d:
    os.unlink(addr)
    os.rmdir(d)
sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)
