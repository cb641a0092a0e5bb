#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Wait for an event with a timeout, saying now and then that it still waits.

    python3 polling_wait.py NAME [--timeout SECONDS] [--progress SECONDS]

The loop people write around threading.Event.wait(), over a named event
that any process (or `evctl set NAME --value V`) may set: prints the value
and exits 0 once the event is set; prints "still waiting for NAME (12s)"
on standard error every --progress seconds; gives up with exit status 1
after --timeout seconds, and with 3 when the event was failed.  Ctrl-C
ends it at once (status 130).
"""

import argparse
import sys
import time

import evd


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("name")
        ap.add_argument("--timeout", type=float, default=60)
        ap.add_argument("--progress", type=float, default=5)
        args = ap.parse_args()

        event = evd.Event(args.name)
        start = time.monotonic()
        deadline = start + args.timeout
        try:
                while True:
                        left = deadline - time.monotonic()
                        try:
                                value = event.wait(max(0, min(args.progress, left)))
                        except Exception as e:
                                print(f"{args.name} failed: {e}", file=sys.stderr)
                                return 3
                        if value is not False:
                                print("" if value is True else value, flush=True)
                                return 0
                        if time.monotonic() >= deadline:
                                print(f"timed out waiting for {args.name} ({args.timeout:g}s)",
                                      file=sys.stderr)
                                return 1
                        waited = time.monotonic() - start
                        print(f"still waiting for {args.name} ({waited:.1f}s)", file=sys.stderr,
                              flush=True)
        except KeyboardInterrupt:
                print(f"interrupted while waiting for {args.name}", file=sys.stderr)
                return 130


if __name__ == "__main__":
        sys.exit(main())
