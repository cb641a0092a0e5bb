# SPDX-License-Identifier: MIT
"""CPython's own tests of threading's classes (test.lock_tests, in Debian's
libpython3.11-testsuite) run against evd's.  Skipped (exit 77) when that
module is not installed.

The few tests left out check what evd does differently on purpose, or
threading's internals; each is named with the reason in SKIPPED."""

import sys
import unittest

import evdtest

try:
        from test import lock_tests
except ImportError:
        lock_tests = None

import evd

SKIPPED = {
        # Condition over threading.Lock: an evd condition is bound to an
        # evd lock in the shared segment (TypeError otherwise).
        "ConditionTests.test_acquire": "an evd Condition needs an evd lock",
        # Event._cond is threading.Event's own internal condition.
        "EventTests.test_at_fork_reinit": "threading.Event's internals (_cond)",
}


def setUpModule():
        evdtest.start()


def tearDownModule():
        evdtest.stop()


def load_tests(loader, tests, pattern):
        suite = unittest.TestSuite()
        if lock_tests is None:
                return suite
        classes = {
                "LockTests": (lock_tests.LockTests, "locktype", evd.Lock),
                "RLockTests": (lock_tests.RLockTests, "locktype", evd.RLock),
                "ConditionAsRLockTests": (lock_tests.RLockTests, "locktype", evd.Condition),
                "EventTests": (lock_tests.EventTests, "eventtype", evd.Event),
                "ConditionTests": (lock_tests.ConditionTests, "condtype", evd.Condition),
                "SemaphoreTests": (lock_tests.SemaphoreTests, "semtype", evd.Semaphore),
                "BoundedSemaphoreTests": (lock_tests.BoundedSemaphoreTests, "semtype",
                                          evd.BoundedSemaphore),
                "BarrierTests": (lock_tests.BarrierTests, "barriertype", evd.Barrier),
        }
        for name, (base, attr, cls) in classes.items():
                attrs = {attr: staticmethod(cls)}
                for key, why in SKIPPED.items():
                        cname, test = key.split(".")
                        if cname == name:
                                attrs[test] = unittest.skip(why)(lambda self: None)
                suite.addTests(loader.loadTestsFromTestCase(type(name, (base,), attrs)))
        return suite


if __name__ == "__main__":
        if lock_tests is None:
                print("test.lock_tests is not installed (Debian: libpython3.11-testsuite): skipped")
                sys.exit(77)
        unittest.main()
