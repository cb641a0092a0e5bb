#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A pool of worker processes of which only a few work at once.

    python3 semaphore_pool.py [--jobs N] [--slots K]

N jobs run in N processes (multiprocessing), each inside
evd.BoundedSemaphore(K): at most K are inside at any time, whatever the
scheduler does.  The semaphore here is private (no name): it is handed to
the children by pickling and deleted when this program ends.  Give it a
name (BoundedSemaphore(K, name="builds")) and unrelated programs, or
`evctl sem run builds -- CMD` in a shell, share the same K slots.
Each job notes how many were inside with it, under an evd.Lock.
"""

import argparse
import multiprocessing
import sys
import time

import evd


def job(n, slots, lock, inside, most):
        with slots:
                with lock:
                        inside.value += 1
                        most.value = max(most.value, inside.value)
                        now = inside.value
                # One write of the whole line: jobs print at once, and print()
                # writes the text and its newline apart.
                sys.stdout.write(f"job {n}: working, {now} inside\n")
                sys.stdout.flush()
                time.sleep(0.2)  # the work
                with lock:
                        inside.value -= 1


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--jobs", type=int, default=8)
        ap.add_argument("--slots", type=int, default=2)
        args = ap.parse_args()

        mp = multiprocessing.get_context("spawn")
        slots = evd.BoundedSemaphore(args.slots)
        lock = evd.Lock()
        inside = mp.Value("i", 0, lock=False)
        most = mp.Value("i", 0, lock=False)
        procs = [mp.Process(target=job, args=(n, slots, lock, inside, most))
                 for n in range(1, args.jobs + 1)]
        for p in procs:
                p.start()
        for p in procs:
                p.join()
        failed = [p for p in procs if p.exitcode != 0]
        print(f"{args.jobs} jobs done, at most {most.value} at once (slots: {args.slots})")
        return 1 if failed or most.value > args.slots else 0


if __name__ == "__main__":
        sys.exit(main())
