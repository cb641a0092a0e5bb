#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# notify.py - a stand-in for the service manager's side of sd_notify: bind a
# datagram socket, run a command with NOTIFY_SOCKET pointing at it, print
# every message received (one per line, fields joined by '|') until the
# command exits or the time limit passes.
#
# Usage: notify.py SECONDS OUTFILE -- CMD...
import os
import socket
import subprocess
import sys
import tempfile
import time

secs = float(sys.argv[1])
out = sys.argv[2]
cmd = sys.argv[sys.argv.index("--") + 1:]
d = tempfile.mkdtemp(prefix="evd-notify.")
path = os.path.join(d, "notify")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.1)
env = dict(os.environ, NOTIFY_SOCKET=path)
p = subprocess.Popen(cmd, env=env)
deadline = time.monotonic() + secs
with open(out, "w", buffering=1) as f:
    while time.monotonic() < deadline:
        try:
            msg = s.recv(4096).decode(errors="replace")
            f.write("|".join(msg.strip().split("\n")) + "\n")
        except socket.timeout:
            if p.poll() is not None:
                break
    if p.poll() is None:
        p.kill()
    p.wait()
os.unlink(path)
os.rmdir(d)
sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)
