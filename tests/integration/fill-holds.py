#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fill-holds.py - take N holds on the semaphore NAME of the namespace in
$EVD_RUNTIME_DIR through libevd, each for a thread of this process (a
thread's id is a live process id to /proc and kill(2)), so that a test can
fill the namespace's table of holds without N processes.  Prints the number
of holds taken, then keeps them until the file STOP exists.

Usage: fill-holds.py LIBEVD NAME MAX N STOP"""
import ctypes
import os
import sys
import threading
import time


def main():
    libpath, name, maxslots, n, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    lib = ctypes.CDLL(libpath)
    lib.evd_open.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_uint]
    lib.evd_sem_open.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint32,
                                 ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
    lib.evd_sem_acquire.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int64]
    threading.stack_size(256 * 1024)
    done = threading.Event()
    tids = []
    guard = threading.Lock()

    def park():
        with guard:
            tids.append(threading.get_native_id())
        done.wait()

    for _ in range(n):
        threading.Thread(target=park, daemon=True).start()
    while len(tids) < n:
        time.sleep(0.01)
    ctx = ctypes.c_void_p()
    r = lib.evd_open(ctypes.byref(ctx), None, 0)
    if r < 0:
        sys.exit("fill-holds: evd_open: %d" % r)
    sem = ctypes.c_void_p()
    r = lib.evd_sem_open(ctx, name.encode(), maxslots, maxslots, 0, ctypes.byref(sem))
    if r < 0:
        sys.exit("fill-holds: evd_sem_open: %d" % r)
    taken = 0
    for tid in tids:
        r = lib.evd_sem_acquire(sem, tid, 0, 0)
        if r != 0:
            print("fill-holds: acquire for %d: %d" % (tid, r), file=sys.stderr)
            break
        taken += 1
    print(taken, flush=True)
    while not os.path.exists(stop):
        time.sleep(0.05)
    done.set()


main()
