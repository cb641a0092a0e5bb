# SPDX-License-Identifier: MIT
"""Every class between separate processes: unrelated programs sharing named
objects (subprocess), private objects handed to multiprocessing (fork and
spawn) and ProcessPoolExecutor workers by pickling, a fork()ed child using
its parent's objects, and holders killed with SIGKILL whose holds come
back."""

import concurrent.futures
import multiprocessing
import os
import signal
import tempfile
import unittest

import evdtest
from evdtest import Child

import evd

T = evdtest.DEADLINE


def setUpModule():
        evdtest.start()


def tearDownModule():
        evdtest.stop()


# ---- workers (module level, so that spawn can find them) ---------------------


def add_under_lock(lock, path, n):
        for _ in range(n):
                with lock:
                        with open(path) as f:
                                v = int(f.read())
                        with open(path, "w") as f:
                                f.write(str(v + 1))


def inside_semaphore(sem, lock, path, rounds):
        # Count the holders inside; record the most ever seen at once.
        for _ in range(rounds):
                with sem:
                        with lock:
                                with open(path) as f:
                                        cur, most = map(int, f.read().split())
                                cur += 1
                                with open(path, "w") as f:
                                        f.write(f"{cur} {max(cur, most)}")
                        with lock:
                                with open(path) as f:
                                        cur, most = map(int, f.read().split())
                                with open(path, "w") as f:
                                        f.write(f"{cur - 1} {most}")


def barrier_party(barrier, q):
        q.put(barrier.wait(T))


def wait_event(event, q):
        q.put(event.wait(T))


def cond_waiter(cond, q):
        with cond:
                q.put("waiting")
                q.put(cond.wait(T))


def pool_task(event, sem, i):
        with sem:
                return i, event.wait(T)


class SubprocessTest(unittest.TestCase):
        """Unrelated programs that only share names."""

        def test_event(self):
                c = Child("""
                        import evd, sys
                        e = evd.Event(sys.argv[1])
                        print("ready", flush=True)
                        print(e.wait(120), flush=True)
                        evd.Event(sys.argv[1] + ".back").send({"pid": 1})
                """, "py-proc-event")
                c.expect("ready")
                evdtest.wait_waiters("py-proc-event")
                evd.Event("py-proc-event").send("127.0.0.1:6379")
                c.expect("127.0.0.1:6379")
                self.assertEqual(evd.Event("py-proc-event.back").wait(T), {"pid": 1})
                self.assertEqual(c.finish()[0], 0)
                evd.delete("py-proc-event")
                evd.delete("py-proc-event.back")

        def test_failed_event(self):
                c = Child("""
                        import evd, sys
                        try:
                                evd.Event(sys.argv[1]).wait(120)
                        except TimeoutError as e:
                                print("TimeoutError", e, flush=True)
                """, "py-proc-fail")
                evdtest.wait_waiters("py-proc-fail")
                evd.Event("py-proc-fail").send_exception(TimeoutError("redis did not come up"))
                c.expect("TimeoutError redis did not come up")
                self.assertEqual(c.finish()[0], 0)
                evd.delete("py-proc-fail")

        def test_lock(self):
                c = Child("""
                        import evd, sys
                        lock = evd.Lock(sys.argv[1])
                        lock.acquire()
                        print("held", flush=True)
                        sys.stdin.readline()
                        lock.release()
                        print("released", flush=True)
                        sys.stdin.readline()
                        print(lock.acquire(timeout=0.01), flush=True)
                        try:
                                lock.release()
                        except RuntimeError as e:
                                print("RuntimeError", e, flush=True)
                """, "py-proc-lock")
                lock = evd.Lock("py-proc-lock")
                c.expect("held")
                self.assertTrue(lock.locked())
                self.assertFalse(lock.acquire(False))
                self.assertFalse(lock.acquire(timeout=0.01))
                with self.assertRaises(RuntimeError):
                        lock.release()  # another process holds it
                c.say("go")
                c.expect("released")
                self.assertTrue(lock.acquire(timeout=T))
                c.say("go")
                c.expect("False")
                c.expect("RuntimeError release unlocked lock")
                lock.release()
                self.assertEqual(c.finish()[0], 0)
                evd.delete("py-proc-lock")

        def test_lock_blocks_until_released(self):
                lock = evd.Lock("py-proc-lock2")
                lock.acquire()
                c = Child("""
                        import evd, sys
                        lock = evd.Lock(sys.argv[1])
                        print(lock.acquire(timeout=120), flush=True)
                        lock.release()
                """, "py-proc-lock2")
                evdtest.wait_waiters("py-proc-lock2")
                lock.release()
                c.expect("True")
                self.assertEqual(c.finish()[0], 0)
                evd.delete("py-proc-lock2")

        def test_semaphores(self):
                s = evd.Semaphore(0, name="py-proc-sem")
                c = Child("""
                        import evd, sys
                        s = evd.Semaphore(name=sys.argv[1])
                        print(s.acquire(timeout=120), s.acquire(timeout=120), flush=True)
                        s.release(5)
                """, "py-proc-sem")
                evdtest.wait_waiters("py-proc-sem")
                s.release(2)
                c.expect("True True")
                self.assertEqual(c.finish()[0], 0)
                self.assertEqual(s._value, 5)
                evd.delete("py-proc-sem")

                b = evd.BoundedSemaphore(2, name="py-proc-bsem")
                c = Child("""
                        import evd, sys
                        b = evd.BoundedSemaphore(2, name=sys.argv[1])
                        b.acquire(); b.acquire()
                        print("held", flush=True)
                        sys.stdin.readline()
                        b.release(2)
                        try:
                                b.release()
                        except ValueError as e:
                                print("ValueError", e, flush=True)
                """, "py-proc-bsem")
                c.expect("held")
                self.assertFalse(b.acquire(timeout=0.01))
                with self.assertRaises(ValueError):
                        b.release()  # this process holds none
                c.say("go")
                c.expect("ValueError Semaphore released too many times")
                self.assertEqual(c.finish()[0], 0)
                self.assertEqual(b._value, 2)
                with self.assertRaises(OSError):
                        evd.BoundedSemaphore(3, name="py-proc-bsem")  # another size
                evd.delete("py-proc-bsem")

        def test_condition_and_rlock(self):
                cond = evd.Condition(name="py-proc-cond")
                c = Child("""
                        import evd, sys
                        cond = evd.Condition(name=sys.argv[1])
                        with cond:
                                with cond:
                                        print("waiting", flush=True)
                                        print(cond.wait(120), flush=True)
                                        print(cond._lock._count, flush=True)
                """, "py-proc-cond")
                c.expect("waiting")
                evdtest.wait_waiters("py-proc-cond")
                with cond:
                        cond.notify()
                c.expect("True")
                c.expect("2")
                self.assertEqual(c.finish()[0], 0)
                self.assertFalse(cond._lock.locked())
                evd.delete("py-proc-cond")
                evd.delete("py-proc-cond.lock")

        def test_barrier(self):
                b = evd.Barrier(3, name="py-proc-barrier")
                code = """
                        import evd, sys
                        b = evd.Barrier(3, name=sys.argv[1])
                        print(b.wait(120), flush=True)
                """
                kids = [Child(code, "py-proc-barrier") for _ in range(2)]
                evdtest.wait_until(lambda: b.n_waiting == 2, "two parties wait")
                got = [b.wait(T)] + [int(k.readline()) for k in kids]
                self.assertEqual(sorted(got), [0, 1, 2])
                self.assertEqual(got[0], 2)
                for k in kids:
                        self.assertEqual(k.finish()[0], 0)
                evd.delete("py-proc-barrier")


        def test_barrier_abort_and_reset(self):
                b = evd.Barrier(2, name="py-proc-abort")
                c = Child("""
                        import evd, sys, threading
                        b = evd.Barrier(2, name=sys.argv[1])
                        for _ in range(2):
                                try:
                                        b.wait(120)
                                        print("passed", flush=True)
                                except threading.BrokenBarrierError:
                                        print("BrokenBarrierError", b.broken, flush=True)
                                sys.stdin.readline()
                """, b.name)
                evdtest.wait_until(lambda: b.n_waiting == 1, "the child waits")
                b.abort()
                c.expect("BrokenBarrierError True")
                self.assertTrue(b.broken)
                b.reset()
                self.assertFalse(b.broken)
                c.say("again")
                evdtest.wait_until(lambda: b.n_waiting == 1, "the child waits again")
                self.assertEqual(b.wait(T), 1)
                c.expect("passed")
                c.say("exit")
                self.assertEqual(c.finish()[0], 0)
                evd.delete(b.name)

        def test_event_state_seen_by_others(self):
                e = evd.Event("py-proc-state")
                code = """
                        import evd, sys
                        e = evd.Event(sys.argv[1])
                        try:
                                got = e.wait(0)
                        except KeyError as x:
                                got = "KeyError"
                        print(e.is_set(), e.ready(), got)
                """
                for change, want in ((e.set, "True True True"), (e.clear, "False False False"),
                                     (lambda: e.send("v"), "True True v"),
                                     (lambda: e.send_exception(KeyError), "False True KeyError")):
                        change()
                        c = Child(code, e.name)
                        c.expect(want)
                        self.assertEqual(c.finish()[0], 0)
                evd.delete(e.name)


class KillTest(unittest.TestCase):
        """SIGKILL a holder: its hold comes back."""

        def hold_and_kill(self, cls, *args):
                name = f"py-kill-{cls.__name__}"
                c = Child(f"""
                        import evd, sys
                        obj = evd.{cls.__name__}({", ".join(map(repr, args))}{", " if args else ""}name=sys.argv[1])
                        obj.acquire()
                        print("held", flush=True)
                        sys.stdin.readline()
                """, name)
                c.expect("held")
                obj = cls(*args, name=name)
                self.assertFalse(obj.acquire(False))
                os.kill(c.pid, signal.SIGKILL)
                c.kill()
                return name, obj

        def test_lock(self):
                name, lock = self.hold_and_kill(evd.Lock)
                with self.assertWarns(evd.AbandonedLockWarning):
                        self.assertTrue(lock.acquire(timeout=T))
                lock.release()
                evd.delete(name)

        def test_rlock(self):
                name, lock = self.hold_and_kill(evd.RLock)
                with self.assertWarns(evd.AbandonedLockWarning):
                        self.assertTrue(lock.acquire(timeout=T))
                lock.release()
                evd.delete(name)

        def test_bounded_semaphore(self):
                name, sem = self.hold_and_kill(evd.BoundedSemaphore, 1)
                self.assertTrue(sem.acquire(timeout=T))
                sem.release()
                self.assertEqual(evdtest.show(name)["holders"], [])
                evd.delete(name)

        def test_barrier_party_killed(self):
                b = evd.Barrier(3, name="py-kill-barrier")
                c = Child("""
                        import evd, sys
                        evd.Barrier(3, name=sys.argv[1]).wait()
                """, "py-kill-barrier")
                evdtest.wait_until(lambda: b.n_waiting == 1, "a party waits")
                os.kill(c.pid, signal.SIGKILL)
                c.kill()
                with self.assertRaises(evd.BrokenBarrierError):
                        b.wait(T)
                evd.delete("py-kill-barrier")


class MultiprocessingTest(unittest.TestCase):
        """Private objects handed to multiprocessing children by pickling
        (spawn) or inheritance (fork)."""

        def contexts(self):
                return [multiprocessing.get_context(m) for m in ("fork", "spawn")]

        def run_procs(self, ctx, target, argsets):
                procs = [ctx.Process(target=target, args=a) for a in argsets]
                for p in procs:
                        p.start()
                for p in procs:
                        p.join(T)
                        self.assertEqual(p.exitcode, 0)

        def test_lock_counter(self):
                for ctx in self.contexts():
                        lock = evd.Lock()
                        with tempfile.NamedTemporaryFile("w", delete=False) as f:
                                f.write("0")
                        self.run_procs(ctx, add_under_lock, [(lock, f.name, 50)] * 4)
                        with open(f.name) as g:
                                self.assertEqual(g.read(), "200")
                        os.unlink(f.name)

        def test_semaphore_limit(self):
                for ctx in self.contexts():
                        for sem in (evd.BoundedSemaphore(2), evd.Semaphore(2)):
                                lock = evd.Lock()
                                with tempfile.NamedTemporaryFile("w", delete=False) as f:
                                        f.write("0 0")
                                self.run_procs(ctx, inside_semaphore,
                                               [(sem, lock, f.name, 20)] * 4)
                                with open(f.name) as g:
                                        cur, most = map(int, g.read().split())
                                self.assertEqual(cur, 0)
                                self.assertLessEqual(most, 2)
                                self.assertEqual(sem._value, 2)
                                os.unlink(f.name)

        def test_barrier_and_event(self):
                for ctx in self.contexts():
                        q = ctx.Queue()
                        b = evd.Barrier(3)
                        self.run_procs(ctx, barrier_party, [(b, q)] * 3)
                        self.assertEqual(sorted(q.get(timeout=T) for _ in range(3)), [0, 1, 2])
                        e = evd.Event()
                        procs = [ctx.Process(target=wait_event, args=(e, q)) for _ in range(2)]
                        for p in procs:
                                p.start()
                        e.send([1, 2])
                        for p in procs:
                                p.join(T)
                        self.assertEqual([q.get(timeout=T) for _ in range(2)], [[1, 2]] * 2)

        def test_condition(self):
                for ctx in self.contexts():
                        q = ctx.Queue()
                        cond = evd.Condition(evd.Lock())
                        p = ctx.Process(target=cond_waiter, args=(cond, q))
                        p.start()
                        self.assertEqual(q.get(timeout=T), "waiting")
                        evdtest.wait_waiters(cond.name)
                        with cond:
                                cond.notify_all()
                        self.assertIs(q.get(timeout=T), True)
                        p.join(T)
                        self.assertEqual(p.exitcode, 0)

        def test_process_pool(self):
                e = evd.Event()
                sem = evd.BoundedSemaphore(2)
                mp = multiprocessing.get_context("spawn")
                with concurrent.futures.ProcessPoolExecutor(2, mp_context=mp) as pool:
                        futs = [pool.submit(pool_task, e, sem, i) for i in range(4)]
                        e.send("go")
                        got = sorted(f.result(timeout=T) for f in futs)
                self.assertEqual(got, [(i, "go") for i in range(4)])
                self.assertEqual(sem._value, 2)


class ForkTest(unittest.TestCase):
        def test_child_uses_parent_objects(self):
                checked, e, done = evd.Event(), evd.Event(), evd.Event()
                lock = evd.Lock()
                rlock = evd.RLock()
                rlock.acquire()
                lock.acquire()
                pid = os.fork()
                if pid == 0:
                        code = 1
                        try:
                                # The parent holds both; the child does not.
                                checked.send(not lock.acquire(False) and not rlock._is_owned()
                                             and not rlock.acquire(False))
                                e.wait(T)
                                lock.acquire(timeout=T)
                                lock.release()
                                done.send("child done")
                                code = 0
                        finally:
                                os._exit(code)
                self.assertIs(checked.wait(T), True)
                e.set()
                lock.release()
                self.assertEqual(done.wait(T), "child done")
                _, status = os.waitpid(pid, 0)
                self.assertEqual(os.waitstatus_to_exitcode(status), 0)
                rlock.release()
                # The child's exit did not delete the parent's private objects.
                self.assertTrue(e.is_set())


if __name__ == "__main__":
        unittest.main()
