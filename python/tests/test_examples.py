# SPDX-License-Identifier: MIT
"""Each example in python/examples runs and does what it says."""

import os
import subprocess
import sys
import unittest

import evdtest

import evd

T = evdtest.DEADLINE
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")


def setUpModule():
        evdtest.start()


def tearDownModule():
        evdtest.stop()


def run(name, *args):
        return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                              capture_output=True, text=True, timeout=T)


class ExamplesTest(unittest.TestCase):
        @unittest.skipUnless(subprocess.run(["sh", "-c", "command -v redis-server"],
                                            capture_output=True).returncode == 0,
                             "redis-server is not installed")
        def test_redis_ready(self):
                p = run("redis_ready.py", "--workers", "3", "--timeout", str(T))
                self.assertEqual(p.returncode, 0, p.stderr)
                lines = p.stdout.splitlines()
                self.assertEqual(len([ln for ln in lines if ln.startswith("worker ")]), 3, p.stdout)
                self.assertIn("workers counted in: 3", lines)

        def test_polling_wait(self):
                c = evdtest.Child("""
                        import runpy, sys
                        sys.argv = sys.argv[1:]
                        runpy.run_path(sys.argv[0], run_name="__main__")
                """, os.path.join(EXAMPLES, "polling_wait.py"), "py-example-poll",
                        "--timeout", str(T), "--progress", "0.05")
                # The first progress message says it waits: set the event then.
                line = c.p.stderr.readline()
                self.assertTrue(line.startswith("still waiting for py-example-poll ("), line)
                evdtest.evctl("set", "py-example-poll", "--value", "127.0.0.1:6379")
                code, out, _ = c.finish()
                self.assertEqual((code, out), (0, "127.0.0.1:6379"))

                evd.Event("py-example-poll").clear()
                p = run("polling_wait.py", "py-example-poll", "--timeout", "0.2", "--progress", "0.05")
                self.assertEqual(p.returncode, 1)
                self.assertIn("still waiting for py-example-poll", p.stderr)
                self.assertIn("timed out waiting for py-example-poll (0.2s)", p.stderr)

                evdtest.evctl("fail", "py-example-poll", "disk full")
                p = run("polling_wait.py", "py-example-poll")
                self.assertEqual(p.returncode, 3)
                self.assertIn("py-example-poll failed: disk full", p.stderr)
                evd.delete("py-example-poll")

        def test_semaphore_pool(self):
                p = run("semaphore_pool.py", "--jobs", "6", "--slots", "2")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(len([ln for ln in p.stdout.splitlines() if ln.startswith("job ")]), 6,
                                 p.stdout)
                self.assertRegex(p.stdout, r"6 jobs done, at most [12] at once \(slots: 2\)")

        def test_crashed_worker(self):
                p = run("crashed_worker.py")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("acquire(False) -> False", p.stdout)
                self.assertIn("exit code -9", p.stdout)
                self.assertIn("the slot came back", p.stdout)
                self.assertIn("the lock came back, with a warning", p.stdout)


if __name__ == "__main__":
        unittest.main()
