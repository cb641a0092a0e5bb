# SPDX-License-Identifier: MIT
"""asyncio: Event.wait_async and acquire_async of locks and semaphores,
woken by another process or thread through libevd's pollable notifier,
with no Python thread started; timeouts; failures raised."""

import asyncio
import resource
import threading
import unittest

import evdtest
from evdtest import Child

import evd

T = evdtest.DEADLINE


def setUpModule():
        evdtest.start()


def tearDownModule():
        evdtest.stop()


class AsyncTest(unittest.TestCase):
        def run_async(self, coro):
                return asyncio.run(asyncio.wait_for(coro, T))

        def test_event_from_another_process(self):
                e = evd.Event("py-async-event")
                c = Child("""
                        import evd, sys
                        sys.stdin.readline()
                        evd.Event(sys.argv[1]).send("127.0.0.1:6379")
                """, e.name)

                async def main():
                        threads = threading.active_count()
                        waits = [asyncio.create_task(e.wait_async()) for _ in range(3)]
                        # Every task is parked on its descriptor: no thread.
                        await asyncio.sleep(0)
                        self.assertEqual(threading.active_count(), threads)
                        c.say("set")
                        return await asyncio.gather(*waits)

                self.assertEqual(self.run_async(main()), ["127.0.0.1:6379"] * 3)
                self.assertEqual(c.finish()[0], 0)
                evd.delete(e.name)

        def test_event_results(self):
                e = evd.Event()

                async def main():
                        self.assertIs(await e.wait_async(0), False)
                        self.assertIs(await e.wait_async(0.01), False)
                        e.set()
                        self.assertIs(await e.wait_async(), True)
                        e.clear()
                        loop = asyncio.get_running_loop()
                        loop.call_soon(e.send, {"port": 6379})
                        self.assertEqual(await e.wait_async(T), {"port": 6379})
                        e.clear()
                        t = threading.Thread(target=e.send_exception,
                                             args=(ConnectionError("down"),))
                        loop.call_soon(t.start)
                        with self.assertRaisesRegex(ConnectionError, "down"):
                                await e.wait_async()
                        t.join()

                self.run_async(main())

        def test_lock_and_semaphores(self):
                lock = evd.Lock("py-async-lock")
                sem = evd.BoundedSemaphore(1, name="py-async-sem")
                c = Child("""
                        import evd, sys
                        lock = evd.Lock(sys.argv[1])
                        sem = evd.BoundedSemaphore(1, name=sys.argv[2])
                        lock.acquire(); sem.acquire()
                        print("held", flush=True)
                        sys.stdin.readline()
                        lock.release()
                        sys.stdin.readline()
                        sem.release()
                        sys.stdin.readline()
                """, lock.name, sem.name)
                c.expect("held")

                async def main():
                        self.assertIs(await lock.acquire_async(0.01), False)
                        self.assertIs(await sem.acquire_async(0), False)
                        task = asyncio.create_task(lock.acquire_async())
                        await asyncio.sleep(0)
                        c.say("release the lock")
                        self.assertIs(await task, True)
                        task = asyncio.create_task(sem.acquire_async(T))
                        await asyncio.sleep(0)
                        c.say("release the slot")
                        self.assertIs(await task, True)

                self.run_async(main())
                self.assertEqual(lock._holder(), __import__("os").getpid())
                lock.release()
                sem.release()
                c.say("exit")
                self.assertEqual(c.finish()[0], 0)
                evd.delete(lock.name)
                evd.delete(sem.name)

        def test_rlock_and_plain_semaphore(self):
                r = evd.RLock()
                s = evd.Semaphore(0)

                async def main():
                        self.assertIs(await r.acquire_async(), True)
                        self.assertIs(await r.acquire_async(0), True)  # owner again
                        r.release()
                        r.release()
                        task = asyncio.create_task(s.acquire_async(T))
                        await asyncio.sleep(0)
                        threading.Thread(target=s.release).start()
                        self.assertIs(await task, True)

                self.run_async(main())
                self.assertFalse(r.locked())

        def test_idle_wait_costs_no_cpu(self):
                # A waiter woken on every change would spin here: the event is
                # changed once, then nothing happens for a second.  The bound
                # is on this process's CPU time, which other work on the
                # machine does not inflate.
                e = evd.Event()

                async def main():
                        loop = asyncio.get_running_loop()
                        loop.call_soon(e.clear)
                        before = resource.getrusage(resource.RUSAGE_SELF)
                        self.assertIs(await e.wait_async(1.0), False)
                        after = resource.getrusage(resource.RUSAGE_SELF)
                        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

                cpu = self.run_async(main())
                print(f"CPU during a 1 s idle wait_async: {cpu * 1000:.1f} ms")
                self.assertLess(cpu, 0.3)

        def test_cancelled_task_leaves_nothing(self):
                e = evd.Event()

                async def main():
                        task = asyncio.create_task(e.wait_async())
                        await asyncio.sleep(0)
                        task.cancel()
                        with self.assertRaises(asyncio.CancelledError):
                                await task
                        loop = asyncio.get_running_loop()
                        # Its descriptor left the loop: a change wakes nobody.
                        self.assertEqual(len(loop._selector.get_map()), 1)

                self.run_async(main())


if __name__ == "__main__":
        unittest.main()
