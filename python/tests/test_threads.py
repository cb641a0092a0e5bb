# SPDX-License-Identifier: MIT
"""Every class and method between the threads of one process: results,
exceptions and timeouts as threading's; values and failures of events;
private objects deleted with their last reference; pickling."""

import gc
import os
import pickle
import threading
import unittest
import warnings

import evdtest

import evd

T = evdtest.DEADLINE


def setUpModule():
        evdtest.start()


def tearDownModule():
        evdtest.stop()


def thread(target, *args):
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        return t


def join(t):
        t.join(T)
        if t.is_alive():
                raise AssertionError("a thread hung")


class EventTest(unittest.TestCase):
        def test_set_clear_wait(self):
                e = evd.Event()
                self.assertFalse(e.is_set())
                self.assertFalse(e.wait(0))
                self.assertFalse(e.wait(0.01))
                e.set()
                self.assertTrue(e.is_set())
                self.assertIs(e.wait(), True)
                self.assertIs(e.wait(0), True)
                e.clear()
                self.assertFalse(e.is_set())
                self.assertFalse(e.ready())
                e.set()
                self.assertTrue(e.ready())
                e.reset()
                self.assertFalse(e.is_set())

        def test_wait_released_by_other_thread(self):
                e = evd.Event()
                got = []
                started = threading.Event()

                def waiter():
                        started.set()
                        got.append(e.wait(T))

                ts = [thread(waiter) for _ in range(4)]
                for _ in ts:
                        pass
                started.wait(T)
                evdtest.wait_waiters(e.name, 1)
                e.set()
                for t in ts:
                        join(t)
                self.assertEqual(got, [True] * 4)

        def test_values(self):
                e = evd.Event()
                for value in ["127.0.0.1:6379", "", b"\x00\xffbytes", 42, [1, "two", None],
                              {"k": 1.5}, "x" * 4096]:
                        e.clear()
                        e.send(value)
                        self.assertEqual(e.wait(0), True if value == "" else value)
                e.send(None)
                self.assertIs(e.wait(), True)
                with self.assertRaises(ValueError):
                        e.send("x" * 4097)
                with self.assertRaises(TypeError):
                        e.send(object())

        def test_value_from_evctl_and_back(self):
                e = evd.Event("py-threads-value")
                evdtest.evctl("set", e.name, "--value", "127.0.0.1:6379")
                self.assertEqual(e.wait(0), "127.0.0.1:6379")
                e.clear()
                e.send("10.0.0.1:1")
                self.assertEqual(evdtest.evctl("wait", e.name, "--timeout", "0").stdout,
                                 "10.0.0.1:1\n")
                evd.delete(e.name)

        def test_send_exception(self):
                e = evd.Event()
                e.send_exception(KeyError("missing"))
                self.assertFalse(e.is_set())
                self.assertTrue(e.ready())
                with self.assertRaises(KeyError) as cm:
                        e.wait()
                self.assertEqual(cm.exception.args, ("'missing'",))
                e.clear()
                e.send_exception(ConnectionRefusedError)
                with self.assertRaises(ConnectionRefusedError):
                        e.wait(0)
                e.clear()
                e.send_exception(evd.EventFailed("custom"))
                with self.assertRaisesRegex(evd.EventFailed, "custom"):
                        e.wait(0)
                e.clear()
                e.send_exception(ValueError, ValueError("as eventlet passes it"), None)
                with self.assertRaisesRegex(ValueError, "as eventlet passes it"):
                        e.wait(0)

        def test_failure_from_evctl(self):
                e = evd.Event("py-threads-fail")
                evdtest.evctl("fail", e.name, "redis-server exited with status 1")
                with self.assertRaisesRegex(evd.EventFailed, "^redis-server exited with status 1$"):
                        e.wait(T)
                # A message that looks like "Type: text" names no class we know.
                evdtest.evctl("fail", e.name, "NoSuchError: x")
                with self.assertRaisesRegex(evd.EventFailed, "NoSuchError: x"):
                        e.wait(T)
                e.send_exception(OSError("disk full"))
                p = evdtest.evctl("wait", e.name, "--timeout", "0", check=False)
                self.assertEqual(p.returncode, 3)
                self.assertIn("OSError: disk full", p.stderr)
                evd.delete(e.name)

        def test_positional_name(self):
                a = evd.Event("py-threads-positional")
                b = evd.Event(name="py-threads-positional")
                a.set()
                self.assertTrue(b.is_set())
                self.assertEqual(evdtest.show(a.name)["type"], "event")
                evd.delete(a.name)

        def test_bad_names(self):
                for bad in ["", "a/b", "-x", "x" * 65]:
                        with self.assertRaises(ValueError):
                                evd.Event(bad)
                with self.assertRaises(TypeError):
                        evd.Lock(name=b"bytes")


class LockTest(unittest.TestCase):
        def test_acquire_release(self):
                lock = evd.Lock()
                self.assertFalse(lock.locked())
                self.assertTrue(lock.acquire())
                self.assertTrue(lock.locked())
                self.assertFalse(lock.acquire(False))
                self.assertFalse(lock.acquire(timeout=0.01))
                self.assertFalse(lock.acquire(True, 0))
                lock.release()
                self.assertFalse(lock.locked())
                with self.assertRaisesRegex(RuntimeError, "release unlocked lock"):
                        lock.release()
                with lock:
                        self.assertTrue(lock.locked())
                self.assertFalse(lock.locked())

        def test_arguments(self):
                lock = evd.Lock()
                with self.assertRaises(ValueError):
                        lock.acquire(False, 1)
                with self.assertRaises(ValueError):
                        lock.acquire(timeout=-100)
                with self.assertRaises(OverflowError):
                        lock.acquire(timeout=evd.TIMEOUT_MAX + 1)

        def test_threads_exclude_each_other(self):
                lock = evd.Lock()
                lock.acquire()
                got = []
                t = thread(lambda: got.append(lock.acquire(timeout=T)))
                evdtest.wait_waiters(lock.name, 1)
                self.assertEqual(got, [])
                lock.release()
                join(t)
                self.assertEqual(got, [True])
                # threading.Lock may be released by another thread, and so may ours.
                self.assertTrue(lock.locked())
                lock.release()

        def test_counter_under_lock(self):
                lock = evd.Lock()
                box = [0]

                def work():
                        for _ in range(200):
                                with lock:
                                        v = box[0]
                                        box[0] = v + 1

                ts = [thread(work) for _ in range(4)]
                for t in ts:
                        join(t)
                self.assertEqual(box[0], 800)

        def test_named_is_visible(self):
                lock = evd.Lock(name="py-threads-lock")
                with lock:
                        info = evdtest.show("py-threads-lock")
                        self.assertEqual(info["holders"][0]["pid"], os.getpid())
                evd.delete("py-threads-lock")


class RLockTest(unittest.TestCase):
        def test_recursion(self):
                r = evd.RLock()
                self.assertTrue(r.acquire())
                self.assertTrue(r.acquire(False))
                with r:
                        self.assertTrue(r._is_owned())
                r.release()
                self.assertTrue(r.locked())
                r.release()
                self.assertFalse(r.locked())
                with self.assertRaises(RuntimeError):
                        r.release()

        def test_other_thread(self):
                r = evd.RLock()
                r.acquire()
                errors, got = [], []

                def other():
                        try:
                                r.release()
                        except RuntimeError as e:
                                errors.append(e)
                        got.append(r.acquire(timeout=0.01))
                        got.append(r._is_owned())

                join(thread(other))
                self.assertEqual(len(errors), 1)
                self.assertEqual(got, [False, False])
                r.release()
                t = thread(lambda: got.append(r.acquire(timeout=T)) or r.release())
                join(t)
                self.assertEqual(got[-1], True)


class SemaphoreTest(unittest.TestCase):
        def test_counting(self):
                s = evd.Semaphore(2)
                self.assertTrue(s.acquire())
                self.assertTrue(s.acquire(False))
                self.assertFalse(s.acquire(False))
                self.assertFalse(s.acquire(timeout=0.01))
                s.release(2)
                self.assertEqual(s._value, 2)
                s.release()  # a plain semaphore may grow past its start
                self.assertEqual(s._value, 3)
                with s:
                        self.assertEqual(s._value, 2)
                with self.assertRaises(ValueError):
                        s.acquire(False, 1)
                with self.assertRaises(ValueError):
                        s.release(0)
                with self.assertRaises(ValueError):
                        evd.Semaphore(-1)
                self.assertEqual(evd.Semaphore()._value, 1)

        def test_release_n_wakes_n(self):
                s = evd.Semaphore(0)
                got = []
                ts = [thread(lambda: got.append(s.acquire(timeout=T))) for _ in range(3)]
                evdtest.wait_waiters(s.name, 1)
                s.release(3)
                for t in ts:
                        join(t)
                self.assertEqual(got, [True] * 3)
                self.assertEqual(s._value, 0)

        def test_bounded(self):
                b = evd.BoundedSemaphore(2)
                with self.assertRaisesRegex(ValueError, "released too many times"):
                        b.release()
                b.acquire()
                b.acquire()
                self.assertFalse(b.acquire(False))
                with self.assertRaises(ValueError):
                        b.release(3)
                b.release(2)
                self.assertEqual(b._value, 2)
                # another thread of this process may release what one took
                b.acquire()
                join(thread(b.release))
                self.assertEqual(b._value, 2)


class ConditionTest(unittest.TestCase):
        def test_not_owned(self):
                c = evd.Condition()
                with self.assertRaisesRegex(RuntimeError, "un-acquired"):
                        c.wait(0)
                with self.assertRaisesRegex(RuntimeError, "un-acquired"):
                        c.notify()
                with self.assertRaisesRegex(RuntimeError, "un-acquired"):
                        c.notify_all()
                with self.assertRaises(TypeError):
                        evd.Condition(threading.Lock())

        def test_timeout(self):
                for lock in (None, evd.Lock(), evd.RLock()):
                        c = evd.Condition(lock)
                        with c:
                                self.assertFalse(c.wait(0.01))
                                self.assertFalse(c.wait(0))
                                self.assertTrue(c._is_owned())
                        self.assertFalse(c._lock.locked())

        def test_notify(self):
                for lock in (evd.Lock(), evd.RLock()):
                        c = evd.Condition(lock)
                        items, got = [], []

                        def consumer():
                                with c:
                                        got.append(c.wait_for(lambda: items, T))

                        ts = [thread(consumer) for _ in range(3)]
                        evdtest.wait_waiters(c.name, 1)
                        with c:
                                items.append(1)
                                c.notify()
                        with c:
                                c.notify(1)
                        with c:
                                c.notify_all()
                        for t in ts:
                                join(t)
                        self.assertEqual(got, [[1]] * 3)

        def test_rlock_depth_kept(self):
                c = evd.Condition()
                with c:
                        with c:
                                self.assertFalse(c.wait(0.01))
                                self.assertEqual(c._lock._count, 2)
                self.assertFalse(c._lock.locked())

        def test_wait_for_timeout(self):
                c = evd.Condition()
                with c:
                        self.assertFalse(c.wait_for(lambda: False, 0.05))
                        self.assertEqual(c.wait_for(lambda: 7, 0), 7)


class BarrierTest(unittest.TestCase):
        def test_indices_and_action(self):
                runs = []
                b = evd.Barrier(4, action=lambda: runs.append(b.n_waiting))
                self.assertEqual(b.parties, 4)
                got = []
                for _ in range(2):
                        ts = [thread(lambda: got.append(b.wait(T))) for _ in range(3)]
                        got.append(b.wait(T))
                        for t in ts:
                                join(t)
                self.assertEqual(sorted(got), [0, 0, 1, 1, 2, 2, 3, 3])
                self.assertEqual(runs, [4, 4])
                self.assertFalse(b.broken)
                self.assertEqual(b.n_waiting, 0)

        def test_abort_reset(self):
                b = evd.Barrier(2)
                errs = []

                def party():
                        try:
                                b.wait(T)
                        except threading.BrokenBarrierError as e:
                                errs.append(e)

                t = thread(party)
                evdtest.wait_until(lambda: b.n_waiting == 1, "a party waits")
                b.abort()
                join(t)
                self.assertEqual(len(errs), 1)
                self.assertIs(evd.BrokenBarrierError, threading.BrokenBarrierError)
                self.assertTrue(b.broken)
                with self.assertRaises(threading.BrokenBarrierError):
                        b.wait(0)
                b.reset()
                self.assertFalse(b.broken)
                t = thread(party)
                evdtest.wait_until(lambda: b.n_waiting == 1, "a party waits")
                b.reset()
                join(t)
                self.assertEqual(len(errs), 2)

        def test_timeout_breaks(self):
                b = evd.Barrier(2, timeout=0.01)
                with self.assertRaises(threading.BrokenBarrierError):
                        b.wait()
                self.assertTrue(b.broken)
                b.reset()
                with self.assertRaises(threading.BrokenBarrierError):
                        b.wait(0.01)

        def test_action_raises(self):
                def action():
                        raise KeyError("from the action")

                b = evd.Barrier(2, action=action)
                errs = []

                def party():
                        try:
                                b.wait(T)
                        except BaseException as e:
                                errs.append(e)

                ts = [thread(party) for _ in range(2)]
                for t in ts:
                        join(t)
                self.assertEqual(sorted(type(e).__name__ for e in errs),
                                 ["BrokenBarrierError", "KeyError"])
                self.assertTrue(b.broken)

        def test_bad_parties(self):
                with self.assertRaises(ValueError):
                        evd.Barrier(0)


class LifetimeTest(unittest.TestCase):
        def test_private_deleted_with_last_reference(self):
                for make in (evd.Event, evd.Lock, evd.RLock, evd.Semaphore,
                             evd.BoundedSemaphore, lambda: evd.Barrier(2)):
                        obj = make()
                        name = obj.name
                        self.assertIsNotNone(evdtest.show(name))
                        del obj
                        gc.collect()
                        self.assertIsNone(evdtest.show(name), name)

        def test_condition_takes_its_lock_along(self):
                c = evd.Condition()
                names = [c.name, c._lock.name]
                del c
                gc.collect()
                for n in names:
                        self.assertIsNone(evdtest.show(n), n)

        def test_named_outlives(self):
                e = evd.Event(name="py-threads-outlives")
                e.set()
                del e
                gc.collect()
                self.assertEqual(evdtest.show("py-threads-outlives")["state"], "set")
                self.assertTrue(evd.Event("py-threads-outlives").is_set())
                evd.delete("py-threads-outlives")
                with self.assertRaises(FileNotFoundError):
                        evd.delete("py-threads-outlives")

        def test_condition_names_its_lock(self):
                c = evd.Condition(name="py-threads-cond")
                self.assertEqual(c._lock.name, "py-threads-cond.lock")
                evd.delete("py-threads-cond")
                evd.delete("py-threads-cond.lock")

        def test_type_mismatch(self):
                evd.Lock(name="py-threads-mismatch")
                with self.assertRaises(OSError):
                        evd.Event("py-threads-mismatch")
                evd.delete("py-threads-mismatch")


class PickleTest(unittest.TestCase):
        def test_round_trip(self):
                objs = [evd.Event(), evd.Lock(), evd.RLock(), evd.Semaphore(3),
                        evd.BoundedSemaphore(3), evd.Condition(), evd.Barrier(3)]
                for obj in objs:
                        copy = pickle.loads(pickle.dumps(obj))
                        self.assertIs(type(copy), type(obj))
                        self.assertEqual(copy.name, obj.name)
                e, lock, rlock, s, bs, c, b = (pickle.loads(pickle.dumps(o)) for o in objs)
                objs[0].set()
                self.assertTrue(e.is_set())
                with objs[1]:
                        self.assertTrue(lock.locked())
                self.assertFalse(rlock._is_owned())
                s.acquire()
                self.assertEqual(objs[3]._value, 2)
                self.assertEqual(b.parties, 3)
                with c:
                        self.assertTrue(objs[5]._lock.locked())
                # A copy does not delete the private object it names.
                name = e.name
                del e
                gc.collect()
                self.assertIsNotNone(evdtest.show(name))

        def test_private_object_gone(self):
                data = pickle.dumps(evd.Event())
                gc.collect()
                with self.assertRaises(FileNotFoundError):
                        pickle.loads(data)


class WarningTest(unittest.TestCase):
        def test_no_warning_normally(self):
                with warnings.catch_warnings():
                        warnings.simplefilter("error")
                        lock = evd.Lock()
                        with lock:
                                pass


if __name__ == "__main__":
        unittest.main()
