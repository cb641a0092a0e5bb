#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A worker dies holding its slot and its lock; both come back.

    python3 crashed_worker.py

A worker process takes the only slot of an evd.BoundedSemaphore(1) and an
evd.Lock, then kills itself with SIGKILL: no finally block, no atexit,
nothing of its own runs.  evd sees the process end and gives the slot and
the lock back, so the next worker goes on.  The lock tells its next owner
that it was abandoned (evd.AbandonedLockWarning), because what it guarded
may be half-updated.  With threading, a thread that never released would
have left both held for good.
"""

import multiprocessing
import os
import signal
import sys
import warnings

import evd


def crash(slot, lock, holding, crash_now):
        slot.acquire()
        lock.acquire()
        holding.set()
        crash_now.wait()
        os.kill(os.getpid(), signal.SIGKILL)


def main():
        mp = multiprocessing.get_context("spawn")
        slot = evd.BoundedSemaphore(1)
        lock = evd.Lock()
        holding, crash_now = evd.Event(), evd.Event()
        p = mp.Process(target=crash, args=(slot, lock, holding, crash_now))
        p.start()
        holding.wait()
        print(f"worker {p.pid} holds the slot and the lock", flush=True)
        print(f"a second worker cannot have the slot: acquire(False) -> {slot.acquire(False)}",
              flush=True)
        crash_now.set()
        p.join()
        print(f"worker {p.pid} was killed (exit code {p.exitcode})", flush=True)
        if not slot.acquire(timeout=60):
                print("the slot did not come back", file=sys.stderr)
                return 1
        print("the slot came back: the next worker runs", flush=True)
        with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if not lock.acquire(timeout=60):
                        print("the lock did not come back", file=sys.stderr)
                        return 1
        for w in caught:
                print(f"the lock came back, with a warning: {w.message}", flush=True)
        lock.release()
        slot.release()
        return 0


if __name__ == "__main__":
        sys.exit(main())
