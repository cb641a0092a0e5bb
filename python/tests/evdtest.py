# SPDX-License-Identifier: MIT
"""What the Python tests share: a namespace of their own, evctl, children.

setUpModule() of each test module calls start(): a fresh 0700 runtime
directory in EVD_RUNTIME_DIR (inherited by every child), the build tree's
daemon in EVD_DAEMON, which libevd starts on the first call that needs it.
stop() removes the namespace with `evd --remove --force`.

Every time limit here is a deadline for a hang, never a measurement: the
tests prove order with handshakes (a line on a pipe, the waiter count evd
reports), so that they pass on a machine whose cores are busy.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

DEADLINE = float(os.environ.get("EVD_TEST_DEADLINE", 120))  # seconds: reached only on a hang

EVD = os.environ.get("EVD", "evd")
EVCTL = os.environ.get("EVCTL", "evctl")

_dir = None


def start():
        global _dir
        _dir = tempfile.mkdtemp(prefix="evd-py-")
        os.chmod(_dir, 0o700)
        os.environ["EVD_RUNTIME_DIR"] = _dir
        os.environ["EVD_DAEMON"] = EVD
        os.environ.pop("EVD_NO_AUTOSTART", None)
        return _dir


def stop():
        if _dir is None:
                return
        # Private objects still alive are deleted at exit: by then no daemon
        # is to be started for the namespace removed here.
        os.environ["EVD_NO_AUTOSTART"] = "1"
        subprocess.run([EVD, "--remove", "--force", "--runtime-dir", _dir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=DEADLINE)
        shutil.rmtree(_dir, ignore_errors=True)


def evctl(*args, check=True):
        """Run evctl in the test's namespace; its CompletedProcess."""
        p = subprocess.run([EVCTL, *args], capture_output=True, text=True, timeout=DEADLINE)
        if check and p.returncode != 0:
                raise AssertionError(f"evctl {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p


def show(name):
        """`evctl show NAME --json` as a dict, or None when there is no NAME."""
        p = evctl("show", name, "--json", check=False)
        if p.returncode != 0:
                return None
        return json.loads(p.stdout)


def wait_until(pred, what, deadline=DEADLINE):
        """Poll PRED() until true; fail after DEADLINE seconds (a hang)."""
        end = time.monotonic() + deadline
        while not pred():
                if time.monotonic() > end:
                        raise AssertionError(f"timed out waiting until {what}")
                time.sleep(0.005)


def wait_waiters(name, n=1):
        """Until evd reports N processes blocked on NAME."""
        wait_until(lambda: (show(name) or {}).get("waiters", 0) >= n,
                   f"{n} process(es) wait on {name}")


class Child:
        """A Python child running CODE (dedented) with the package importable,
        talking over its stdin and stdout, line by line."""

        def __init__(self, code, *args):
                self.p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, bufsize=1)
                # Lines come through a queue, so that reading one has a deadline.
                self.lines = queue.Queue()
                threading.Thread(target=self._read, daemon=True).start()

        def _read(self):
                with self.p.stdout:
                        for line in self.p.stdout:
                                self.lines.put(line.rstrip("\n"))
                self.lines.put(None)

        @property
        def pid(self):
                return self.p.pid

        def readline(self):
                try:
                        line = self.lines.get(timeout=DEADLINE)
                except queue.Empty:
                        self.p.kill()
                        raise AssertionError(f"the child said nothing for {DEADLINE} s; "
                                             f"stderr: {self.p.stderr.read()}") from None
                return "" if line is None else line

        def expect(self, line):
                got = self.readline()
                if got != line:
                        self.p.kill()
                        raise AssertionError(f"child said {got!r}, expected {line!r}; "
                                             f"stderr: {self.p.stderr.read()}")

        def say(self, line):
                self.p.stdin.write(line + "\n")
                self.p.stdin.flush()

        def finish(self):
                """Wait for the child; its exit status, its stdout and stderr."""
                try:
                        self.p.stdin.close()
                        self.p.wait(timeout=DEADLINE)
                except subprocess.TimeoutExpired:
                        self.p.kill()
                        self.p.wait()
                        raise AssertionError(f"child hung; stderr: {self.p.stderr.read()}")
                out = []
                while (line := self.lines.get(timeout=DEADLINE)) is not None:
                        out.append(line)
                with self.p.stderr:
                        err = self.p.stderr.read()
                return self.p.returncode, "\n".join(out), err

        def kill(self):
                if self.p.poll() is None:
                        self.p.kill()
                self.p.wait()
                self.p.stdin.close()
                self.p.stderr.close()
