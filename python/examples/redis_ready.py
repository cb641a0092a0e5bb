#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Workers that start before Redis and go on the moment it answers.

    python3 redis_ready.py [--workers N] [--timeout SECONDS]

Starts N worker processes, each blocked in evd.Event("redis-ready").wait();
then starts a real redis-server on a free loopback port, waits until it
answers PING, and sends its address with the event.  Every worker wakes up
with the address, connects and counts itself in with INCR.  A worker
started later would get the address at once, until the event is cleared
(as `evctl clear redis-ready` does).  Needs redis-server on PATH; speaks
just enough of Redis' protocol itself, so it needs nothing but the
standard library and evd.
"""

import argparse
import socket
import subprocess
import sys
import tempfile
import time

import evd


def redis_command(addr, *args):
        host, port = addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
                req = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
                s.sendall(req.encode())
                f = s.makefile()
                reply = f.readline().strip()
                if reply.startswith("$") and reply != "$-1":
                        reply = f.readline().strip()  # a bulk string: its text
                return reply


def worker(n, timeout):
        ready = evd.Event("redis-ready")
        addr = ready.wait(timeout)
        if addr is False:
                print(f"worker {n}: redis did not come up within {timeout} s", file=sys.stderr)
                return 1
        count = redis_command(addr, "INCR", "workers").lstrip(":")
        # One write of the whole line: workers print at once, and print()
        # writes the text and its newline apart.
        sys.stdout.write(f"worker {n}: redis at {addr}, INCR workers -> {count}\n")
        sys.stdout.flush()
        return 0


def free_port():
        with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--workers", type=int, default=3)
        ap.add_argument("--timeout", type=float, default=60)
        ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
        args = ap.parse_args()
        if args.worker is not None:
                return worker(args.worker, args.timeout)

        ready = evd.Event("redis-ready")
        ready.clear()
        workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(n),
                                     "--timeout", str(args.timeout)])
                   for n in range(1, args.workers + 1)]
        print(f"{args.workers} workers wait for redis-ready", flush=True)
        with tempfile.TemporaryDirectory() as d:
                port = free_port()
                addr = f"127.0.0.1:{port}"
                redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no", "--dir", d],
                                         stdout=subprocess.DEVNULL)
                try:
                        deadline = time.monotonic() + args.timeout
                        while True:
                                try:
                                        if redis_command(addr, "PING") == "+PONG":
                                                break
                                except OSError:
                                        pass
                                if redis.poll() is not None or time.monotonic() > deadline:
                                        ready.send_exception(RuntimeError("redis-server did not start"))
                                        print("redis-server did not start", file=sys.stderr)
                                        return 1
                                time.sleep(0.05)
                        print(f"redis answers at {addr}: setting redis-ready", flush=True)
                        ready.send(addr)
                        status = max(w.wait() for w in workers)
                        print(f"workers counted in: {redis_command(addr, 'GET', 'workers')}",
                              flush=True)
                        return status
                finally:
                        ready.clear()
                        redis.terminate()
                        redis.wait()


if __name__ == "__main__":
        sys.exit(main())
