# SPDX-License-Identifier: MIT
"""Ctrl-C: SIGINT sent to a child blocked in any wait, with and without a
timeout, raises KeyboardInterrupt there at once (long before the timeout)
and leaves no hold and no waiter behind."""

import os
import platform
import signal
import unittest

import evdtest
from evdtest import Child

import evd

T = evdtest.DEADLINE

# futex and futex_waitv, where a wait sleeps in the kernel.
_SLEEP_CALLS = {"x86_64": {"202", "449"}, "aarch64": {"98", "449"}}.get(platform.machine())


def setUpModule():
        evdtest.start()


def tearDownModule():
        evdtest.stop()


def asleep(pid):
        """The child's main thread sleeps in a futex call (a signal sent now
        cannot be lost to the few microseconds a wait spins first)."""
        if _SLEEP_CALLS is None:
                return True
        try:
                with open(f"/proc/{pid}/task/{pid}/syscall") as f:
                        return f.read().split()[0] in _SLEEP_CALLS
        except OSError:
                return False


CHILD = """
import evd, sys
kind, name, timeout = sys.argv[1], sys.argv[2], sys.argv[3]
timeout = None if timeout == "none" else float(timeout)
if kind == "event":
        call = lambda: evd.Event(name).wait(timeout)
elif kind == "lock":
        call = lambda: evd.Lock(name).acquire(timeout=-1 if timeout is None else timeout)
elif kind == "rlock":
        call = lambda: evd.RLock(name=name).acquire(timeout=-1 if timeout is None else timeout)
elif kind == "semaphore":
        call = lambda: evd.Semaphore(0, name=name).acquire(timeout=timeout)
elif kind == "bounded":
        call = lambda: evd.BoundedSemaphore(1, name=name).acquire(timeout=timeout)
elif kind == "condition":
        cond = evd.Condition(evd.Lock(name + ".lock"), name=name)
        def call():
                with cond:
                        return cond.wait(timeout)
elif kind == "barrier":
        call = lambda: evd.Barrier(2, name=name).wait(timeout)
print("ready", flush=True)
try:
        print("returned", call(), flush=True)
except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
sys.stdin.readline()
"""


class CtrlCTest(unittest.TestCase):
        def interrupt(self, kind, name, timeout):
                c = Child(CHILD, kind, name, timeout)
                try:
                        c.expect("ready")
                        evdtest.wait_waiters(name)
                        evdtest.wait_until(lambda: asleep(c.pid), "the child sleeps")
                        os.kill(c.pid, signal.SIGINT)
                        c.expect("KeyboardInterrupt")
                        info = evdtest.show(name)
                        self.assertEqual(info["waiters"], 0)
                        self.assertNotIn(c.pid, [h["pid"] for h in info.get("holders", [])])
                        c.say("exit")
                        self.assertEqual(c.finish()[0], 0)
                finally:
                        c.kill()

        def each_timeout(self, kind, name, check):
                for timeout in ("none", "100"):
                        with self.subTest(kind=kind, timeout=timeout):
                                self.interrupt(kind, name, timeout)
                                check()

        def test_event(self):
                e = evd.Event("py-sig-event")
                self.each_timeout("event", e.name, lambda: self.assertFalse(e.is_set()))
                evd.delete(e.name)

        def test_lock(self):
                for kind, cls in (("lock", evd.Lock), ("rlock", evd.RLock)):
                        lock = cls(name=f"py-sig-{kind}")
                        lock.acquire()

                        def check():
                                # Still ours, and ours alone.
                                self.assertEqual(lock._holder(), os.getpid())

                        self.each_timeout(kind, lock.name, check)
                        lock.release()
                        self.assertTrue(lock.acquire(False))
                        lock.release()
                        evd.delete(lock.name)

        def test_semaphores(self):
                s = evd.Semaphore(0, name="py-sig-semaphore")
                self.each_timeout("semaphore", s.name, lambda: self.assertEqual(s._value, 0))
                s.release()
                self.assertEqual(s._value, 1)
                evd.delete(s.name)
                b = evd.BoundedSemaphore(1, name="py-sig-bounded")
                b.acquire()
                self.each_timeout("bounded", b.name, lambda: self.assertEqual(b._value, 0))
                b.release()
                self.assertEqual(b._value, 1)
                evd.delete(b.name)

        def test_condition(self):
                lock = evd.Lock("py-sig-cond.lock")
                cond = evd.Condition(lock, name="py-sig-cond")
                # The child took the lock back and its with-block released it.
                self.each_timeout("condition", cond.name, lambda: self.assertFalse(lock.locked()))
                evd.delete(cond.name)
                evd.delete(lock.name)

        def test_barrier(self):
                b = evd.Barrier(2, name="py-sig-barrier")

                def check():
                        # As threading's, a barrier a party left by an
                        # exception is broken.
                        self.assertTrue(b.broken)
                        b.reset()

                for timeout in ("none", "100"):
                        with self.subTest(timeout=timeout):
                                c = Child(CHILD, "barrier", b.name, timeout)
                                try:
                                        c.expect("ready")
                                        evdtest.wait_until(lambda: b.n_waiting == 1, "a party waits")
                                        evdtest.wait_until(lambda: asleep(c.pid), "the child sleeps")
                                        os.kill(c.pid, signal.SIGINT)
                                        c.expect("KeyboardInterrupt")
                                        check()
                                        c.say("exit")
                                        self.assertEqual(c.finish()[0], 0)
                                finally:
                                        c.kill()
                evd.delete(b.name)

        def test_other_handlers_do_not_end_waits(self):
                # A signal whose handler does not raise: the wait goes on, and
                # returns normally when the event is set.
                c = Child("""
                        import evd, signal, sys
                        seen = []
                        signal.signal(signal.SIGUSR1, lambda *a: seen.append(1))
                        print("ready", flush=True)
                        r = evd.Event(sys.argv[1]).wait(100)
                        print(r, len(seen), flush=True)
                """, "py-sig-usr1")
                c.expect("ready")
                evdtest.wait_waiters("py-sig-usr1")
                evdtest.wait_until(lambda: asleep(c.pid), "the child sleeps")
                os.kill(c.pid, signal.SIGUSR1)
                # The handler ran and the child went back to sleep.
                evdtest.wait_until(lambda: asleep(c.pid) and
                                   evdtest.show("py-sig-usr1")["waiters"] == 1, "it waits again")
                evd.Event("py-sig-usr1").send("done")
                c.expect("done 1")
                self.assertEqual(c.finish()[0], 0)
                evd.delete("py-sig-usr1")


if __name__ == "__main__":
        unittest.main()
