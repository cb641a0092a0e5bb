# SPDX-License-Identifier: MIT
"""threading's synchronisation classes, shared by name between processes.

    import evd
    ready = evd.Event("redis-ready")          # the event evctl sees
    addr = ready.wait(60)                     # the value, or False after 60 s

Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition and Barrier take
threading's positional arguments and behave as threading's do, with a
keyword-only ``name=`` (the shared object of that name, created when
missing) and ``namespace=`` (a runtime directory; default: the namespace
evctl uses).  Without a name an object is private to this program and the
processes it forks or hands it to (objects pickle by name), and is deleted
when its last reference in this program goes.

Where evd differs from threading (docs/python.md has the whole list):

- A hold belongs to a process, not a thread: a lock taken by one thread
  may be released by another thread of the same process (as threading.Lock
  allows), and a ``fork()``ed child does not hold what its parent holds.
- A process that dies holding a Lock, RLock or BoundedSemaphore gives its
  hold back; the next owner of such a lock gets an AbandonedLockWarning.
  A plain Semaphore is a counter without owners, as threading's: a slot
  taken by a process that dies is not given back.
- Named objects outlive the program: they stay in the namespace, with
  their state, until deleted (``evd.delete(name)``, ``evctl delete``).

Blocking calls release the GIL and end at once on Ctrl-C (the
KeyboardInterrupt leaves nothing held).  ``wait_async`` and
``acquire_async`` wait in asyncio without a thread and without CPU.
"""

import asyncio
import builtins
import errno
import json
import math
import os
import secrets
import sys
import threading
import time
import warnings
import weakref
from ctypes import byref, c_int, c_size_t, c_void_p, create_string_buffer

from . import _lib

__all__ = [
        "Event", "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Barrier",
        "BrokenBarrierError", "EventFailed", "AbandonedLockWarning", "delete", "TIMEOUT_MAX",
        "libevd_version",
]

BrokenBarrierError = threading.BrokenBarrierError
TIMEOUT_MAX = threading.TIMEOUT_MAX


def libevd_version():
        """The version of the libevd in use, "MAJOR.MINOR.MICRO"."""
        return _lib.version().decode()


class EventFailed(Exception):
        """An event was failed with a message that names no exception class
        this program knows (e.g. ``evctl fail NAME MESSAGE``)."""


class AbandonedLockWarning(RuntimeWarning):
        """A lock was taken over from a process that died holding it: what it
        protects may be half-updated."""


# ---- waiting ---------------------------------------------------------------


def _usec(seconds):
        if seconds <= 0:
                return 0
        if seconds > TIMEOUT_MAX:
                raise OverflowError("timeout value is too large")
        return math.ceil(seconds * 1_000_000)


def _run_signal_handlers():
        # Calling a Python function is a point where the interpreter runs
        # the handlers of signals that arrived (in the main thread): a
        # KeyboardInterrupt is raised here, before the wait starts again.
        pass


def _wait(call, timeout):
        """Run CALL(usec) until it returns anything but -EINTR, for at most
        TIMEOUT seconds (None: no limit).  A wait interrupted by a signal
        changes nothing (see EVD_OPEN_INTERRUPTIBLE in evd.h): the handler
        runs, and unless it raises, the wait goes on with what is left of
        its time."""
        if timeout is None:
                while True:
                        r = call(_lib.EVD_FOREVER)
                        if r != -errno.EINTR:
                                return r
                        _run_signal_handlers()
        deadline = time.monotonic() + max(timeout, 0)
        usec = _usec(timeout)
        while True:
                r = call(usec)
                if r != -errno.EINTR:
                        return r
                _run_signal_handlers()
                usec = _usec(deadline - time.monotonic())


def _check_blocking_timeout(blocking, timeout):
        """Lock.acquire's arguments, checked as _thread checks them; the
        timeout in seconds, or None for no limit."""
        if not blocking:
                if timeout != -1:
                        raise ValueError("can't specify a timeout for a non-blocking call")
                return 0
        if timeout == -1:
                return None
        if timeout < 0:
                raise ValueError("timeout value must be a non-negative number")
        if timeout > TIMEOUT_MAX:
                raise OverflowError("timeout value is too large")
        return timeout


# ---- objects ---------------------------------------------------------------


def _private_name():
        return f"py.{os.getpid()}.{secrets.token_hex(8)}"


def _delete_private(namespace, name, pid):
        # Only the creating process deletes: a fork()ed child that exits (or
        # drops its copy) must not take the object from its parent.
        if os.getpid() != pid:
                return
        try:
                _lib.delete(_lib.context(namespace), name.encode())
        except Exception:
                pass


def delete(name, *, namespace=None):
        """Delete the named object NAME.  Processes waiting on it get an
        OSError (EIDRM).  FileNotFoundError when there is none."""
        r = _lib.delete(_lib.context(namespace), _encode_name(name))
        if r < 0:
                raise _lib.error(r, f"cannot delete {name}")


def _encode_name(name):
        if not isinstance(name, str):
                raise TypeError(f"an evd name is a str, not {type(name).__name__}")
        b = name.encode()
        why = create_string_buffer(128)
        if _lib.name_check(b, why, len(why)) < 0:
                raise ValueError(f"invalid evd name {name!r}: {why.value.decode()}")
        return b


def _rebuild(cls, name, namespace, args):
        obj = cls.__new__(cls)
        obj._setup(name, namespace, args, private=False, create=False)
        return obj


class _Object:
        """What every class shares: the name, the namespace, the handle, its
        freeing, and the deletion of a private object."""

        _free = None   # the type's evd_*_free

        def _setup(self, name, namespace, args, private, create):
                self._namespace = os.fspath(namespace) if namespace is not None else None
                self._args = args
                ctx = _lib.context(self._namespace)
                flags = 0
                if name is None:
                        name = _private_name()
                        flags = _lib.EVD_CREATE | _lib.EVD_EXCL
                elif create:
                        flags = _lib.EVD_CREATE
                self._name = name
                h = c_void_p()
                r = self._open(ctx, _encode_name(name), flags, h)
                if r < 0:
                        raise _lib.error(r, f"cannot open {self._kind} {name}")
                self._h = h.value
                # Handles are freed when the object goes (never at exit: the
                # process ends anyway, and other threads may still wait).
                fin = weakref.finalize(self, type(self)._free, self._h)
                fin.atexit = False
                if flags & _lib.EVD_EXCL:
                        weakref.finalize(self, _delete_private, self._namespace, name, os.getpid())
                        self._private = True
                else:
                        self._private = private

        @property
        def name(self):
                """The object's name in its namespace (generated for a private one)."""
                return self._name

        @property
        def namespace(self):
                """The runtime directory given to the constructor, or None."""
                return self._namespace

        def __reduce__(self):
                # By name: the receiver opens the same object.  A private
                # object must still exist then (its creator still holds it).
                return (_rebuild, (type(self), self._name, self._namespace, self._args))

        def __repr__(self):
                # threading's shape ("<threading.Event at 0x...: set>"), with the name.
                return (f"<evd.{type(self).__qualname__} at {id(self):#x} "
                        f"{self._name!r}: {self._state_repr()}>")

        def _fail(self, r, what):
                return _lib.error(r, f"cannot {what} {self._kind} {self._name}")

        async def _until(self, check, timeout, timed_out):
                """Await CHECK() -> (done, result) turning done, woken by a
                notifier on the object: no thread of ours, no CPU while
                nothing changes.  TIMED_OUT is the result after TIMEOUT."""
                loop = asyncio.get_running_loop()
                n = c_void_p()
                r = _lib.notifier_open(_lib.context(self._namespace), self._name.encode(), byref(n))
                if r < 0:
                        raise self._fail(r, "watch")
                fd = _lib.notifier_fd(n)
                changed = asyncio.Event()
                loop.add_reader(fd, changed.set)
                deadline = None if timeout is None else loop.time() + max(timeout, 0)
                try:
                        while True:
                                # Acknowledge before looking: a change after
                                # the look makes the descriptor readable.
                                changed.clear()
                                _lib.notifier_ack(n)
                                done, result = check()
                                if done:
                                        return result
                                if deadline is None:
                                        await changed.wait()
                                        continue
                                left = deadline - loop.time()
                                if left <= 0:
                                        return timed_out
                                try:
                                        await asyncio.wait_for(changed.wait(), left)
                                except asyncio.TimeoutError:
                                        pass
                finally:
                        loop.remove_reader(fd)
                        _lib.notifier_free(n)


# ---- Event -----------------------------------------------------------------

_TAG_BYTES = b"\x00bytes\x00"
_TAG_JSON = b"\x00json\x00"


def _encode_value(value):
        if value is None:
                return b""
        if isinstance(value, str) and not value.startswith("\x00"):
                data = value.encode("utf-8", "surrogateescape")
        elif isinstance(value, (bytes, bytearray, memoryview)):
                data = _TAG_BYTES + bytes(value)
        else:
                data = _TAG_JSON + json.dumps(value).encode()
        if len(data) > _lib.EVD_VALUE_MAX:
                raise ValueError(f"an event's value is at most {_lib.EVD_VALUE_MAX} bytes, "
                                 f"this one takes {len(data)}")
        return data


def _decode_value(data):
        # The segment is shared with every process of the namespace: what
        # it holds is decoded, never unpickled.
        if not data:
                return True
        if data.startswith(_TAG_BYTES):
                return data[len(_TAG_BYTES):]
        if data.startswith(_TAG_JSON):
                try:
                        return json.loads(data[len(_TAG_JSON):])
                except ValueError:
                        pass
        return data.decode("utf-8", "surrogateescape")


def _exception_message(exc):
        if isinstance(exc, type):
                exc = exc()
        t = type(exc)
        qual = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
        text = str(exc)
        return f"{qual}: {text}" if text else qual


def _exception_from(message):
        """The exception a failure message names, built again with its
        message: only classes of modules this program imported already, and
        only exception classes; EventFailed for anything else."""
        qual, sep, text = message.partition(": ")
        cls = None
        if qual and all(p.isidentifier() for p in qual.split(".")):
                parts = qual.split(".")
                candidates = [(builtins, parts)] if len(parts) == 1 else []
                for i in range(len(parts) - 1, 0, -1):
                        mod = sys.modules.get(".".join(parts[:i]))
                        if mod is not None:
                                candidates.append((mod, parts[i:]))
                for obj, path in candidates:
                        try:
                                for p in path:
                                        obj = getattr(obj, p)
                        except AttributeError:
                                continue
                        if isinstance(obj, type) and issubclass(obj, BaseException):
                                cls = obj
                                break
        if cls is not None:
                try:
                        return cls(text) if sep else cls()
                except Exception:
                        pass
        return EventFailed(message)



class Event(_Object):
        """threading.Event, with eventlet's send, send_exception, ready and
        reset.  The value sent with send() comes back from wait(): a str as
        it is (what ``evctl set --value`` stores and ``evctl wait``
        prints), bytes, or anything JSON can write.  wait() returns True for
        an event set without a value, False after a timeout."""

        _kind = "event"
        _free = staticmethod(_lib.event_free)

        def __init__(self, name=None, *, namespace=None):
                self._setup(name, namespace, (), private=False, create=True)

        def _open(self, ctx, name, flags, h):
                return _lib.event_open(ctx, name, _lib.EVD_EVENT_MANUAL, flags, byref(h))

        def _state_repr(self):
                return "set" if self.is_set() else "unset"

        def is_set(self):
                """True when set (False when clear or failed)."""
                r = _lib.event_is_set(self._h)
                if r < 0:
                        raise self._fail(r, "read")
                return r == 1

        isSet = is_set

        def set(self):
                """Set the event without a value: every waiter goes on."""
                self.send(None)

        def send(self, value=None):
                """Set the event with VALUE, which every waiter's wait() returns."""
                data = _encode_value(value)
                r = _lib.event_set(self._h, data, len(data))
                if r < 0:
                        raise self._fail(r, "set")

        def send_exception(self, *args):
                """Fail the event: every wait() until the next clear raises the
                exception (an instance or a class, or eventlet's (type,
                value, traceback)) again, with its type and message."""
                if not args:
                        raise TypeError("send_exception() needs an exception")
                exc = args[1] if len(args) > 1 and args[1] is not None else args[0]
                data = _exception_message(exc).encode("utf-8", "surrogateescape")
                if len(data) > _lib.EVD_VALUE_MAX:
                        data = data[:_lib.EVD_VALUE_MAX]
                r = _lib.event_fail(self._h, data)
                if r < 0:
                        raise self._fail(r, "fail")

        def clear(self):
                """Clear the event: the flag, the value and any failure."""
                r = _lib.event_clear(self._h)
                if r < 0:
                        raise self._fail(r, "clear")

        reset = clear

        def ready(self):
                """True when wait() would return at once (set or failed)."""
                while True:
                        r = _lib.event_wait(self._h, 0, None, 0, None)
                        if r != -errno.EINTR:
                                break
                        _run_signal_handlers()
                if r in (0, -errno.ECANCELED):
                        return True
                if r == -errno.ETIMEDOUT:
                        return False
                raise self._fail(r, "read")

        def _result(self, r, buf, n):
                if r == 0:
                        return True, _decode_value(buf.raw[:min(n.value, len(buf))])
                if r == -errno.ETIMEDOUT:
                        return False, False
                if r == -errno.ECANCELED:
                        raise _exception_from(buf.raw[:min(n.value, len(buf))]
                                              .decode("utf-8", "surrogateescape"))
                raise self._fail(r, "wait for")

        def wait(self, timeout=None):
                """Block until the event is set (or TIMEOUT seconds pass).
                Returns the value sent (True when none), False on timeout;
                raises the exception of a failed event."""
                buf = create_string_buffer(_lib.EVD_VALUE_MAX + 1)
                n = c_size_t()
                r = _wait(lambda us: _lib.event_wait(self._h, us, buf, len(buf), byref(n)), timeout)
                return self._result(r, buf, n)[1]

        async def wait_async(self, timeout=None):
                """wait() for asyncio: the same results, awaited without a
                thread and without CPU while nothing happens."""
                buf = create_string_buffer(_lib.EVD_VALUE_MAX + 1)
                n = c_size_t()

                def check():
                        r = _lib.event_wait(self._h, 0, buf, len(buf), byref(n))
                        if r == -errno.EINTR:
                                return False, None
                        return self._result(r, buf, n)

                return await self._until(check, timeout, False)


# ---- locks -----------------------------------------------------------------


class _Acquirable:
        """What locks and semaphores share: leaving a with block releases,
        and acquire_async waits for asyncio."""

        def __exit__(self, *exc):
                self.release()

        async def acquire_async(self, timeout=None):
                """acquire() for asyncio: True, or False after TIMEOUT seconds."""

                def check():
                        got = self._take(0)
                        return got, got

                return await self._until(check, timeout, False)


class Lock(_Acquirable, _Object):
        """threading.Lock shared by name.  The hold belongs to this process:
        any of its threads may release it (as threading allows), a second
        acquire blocks (threads exclude one another), and when the process
        dies holding it the lock comes back (the next owner gets an
        AbandonedLockWarning)."""

        _kind = "lock"
        _free = staticmethod(_lib.lock_free)

        def __init__(self, name=None, *, namespace=None):
                self._setup(name, namespace, (), private=False, create=True)

        def _open(self, ctx, name, flags, h):
                return _lib.lock_open(ctx, name, flags, byref(h))

        def __repr__(self):
                # _thread.lock's shape: "<locked _thread.lock object at 0x...>".
                return (f"<{'locked' if self.locked() else 'unlocked'} evd.{type(self).__qualname__}"
                        f" object {self._name!r}{self._owner_repr()} at {id(self):#x}>")

        def _owner_repr(self):
                return ""

        def _at_fork_reinit(self):
                # threading's own locks call this in a fork()ed child to
                # start unlocked.  An evd hold is the process's: a child
                # holds nothing, and this process lets go of its own.
                if self._holder() == os.getpid():
                        self.release()

        def _take(self, timeout):
                r = _wait(lambda us: _lib.lock_acquire(self._h, 0, 0, us), timeout)
                if r == -errno.ETIMEDOUT:
                        return False
                if r < 0:
                        raise self._fail(r, "acquire")
                if r == _lib.EVD_ABANDONED:
                        warnings.warn(f"evd lock {self._name} was abandoned: its previous owner "
                                      "died holding it, so what it protects may be half-updated",
                                      AbandonedLockWarning, stacklevel=3)
                return True

        def _give(self, unheld_message):
                r = _lib.lock_release(self._h, 0)
                if r == -errno.EOVERFLOW:
                        raise RuntimeError(unheld_message)
                if r < 0:
                        raise self._fail(r, "release")

        def acquire(self, blocking=True, timeout=-1):
                """Acquire the lock, as threading.Lock.acquire: True, or False
                when not blocking or TIMEOUT seconds passed."""
                return self._take(_check_blocking_timeout(blocking, timeout))

        acquire_lock = acquire

        def release(self):
                """Release the lock; RuntimeError when this process does not hold it."""
                self._give("release unlocked lock")

        release_lock = release

        def locked(self):
                """True when some process holds the lock."""
                r = _lib.lock_held(self._h, None)
                if r < 0:
                        raise self._fail(r, "read")
                return r == 1

        locked_lock = locked

        def _holder(self):
                pid = c_int()
                r = _lib.lock_held(self._h, byref(pid))
                if r < 0:
                        raise self._fail(r, "read")
                return pid.value if r == 1 else 0

        def _is_owned(self):
                return self._holder() == os.getpid()

        def _release_save(self):
                return None

        def _acquire_restore(self, state):
                pass

        def __enter__(self):
                """with lock: acquire it (blocking)."""
                return self.acquire()



class RLock(Lock):
        """threading.RLock shared by name: the lock is held by this process,
        and within it by one thread, which may acquire it again (the count
        is this process's own)."""

        _kind = "lock"

        def __init__(self, *, name=None, namespace=None):
                self._owner = None
                self._count = 0
                self._setup(name, namespace, (), private=False, create=True)

        def _me(self):
                return (os.getpid(), threading.get_ident())

        def _rebuilt(self):
                if not hasattr(self, "_count"):
                        self._owner, self._count = None, 0

        def acquire(self, blocking=True, timeout=-1):
                """Acquire the lock, or count one more acquire by the owning thread."""
                self._rebuilt()
                t = _check_blocking_timeout(blocking, timeout)
                me = self._me()
                if self._owner == me:
                        self._count += 1
                        return True
                if not self._take(t):
                        return False
                self._owner, self._count = me, 1
                return True

        def release(self):
                """Count one release; the last one releases the lock.
                RuntimeError unless the calling thread holds it."""
                self._rebuilt()
                if self._owner != self._me() or self._count <= 0:
                        raise RuntimeError("cannot release un-acquired lock")
                self._count -= 1
                if self._count == 0:
                        self._owner = None
                        self._give("cannot release un-acquired lock")

        def _is_owned(self):
                self._rebuilt()
                return self._owner == self._me()

        def _release_save(self):
                # Condition.wait: evd_cond_wait releases the process's hold;
                # the thread's count is kept here meanwhile.
                if not self._is_owned():
                        raise RuntimeError("cannot release un-acquired lock")
                state = (self._owner, self._count)
                self._owner, self._count = None, 0
                return state

        def _acquire_restore(self, state):
                self._owner, self._count = state

        def _owner_repr(self):
                self._rebuilt()
                held = self._holder()
                owner = self._owner[1] if self._owner else 0
                return f" pid={held} owner={owner} count={self._count}"

        def _at_fork_reinit(self):
                self._rebuilt()
                if self._owner is not None and self._owner[0] == os.getpid():
                        self._owner, self._count = None, 0
                        self._give("cannot release un-acquired lock")

        async def acquire_async(self, timeout=None):
                """acquire() for asyncio: True, or False after TIMEOUT seconds."""
                self._rebuilt()

                def check():
                        got = self.acquire(False)
                        return got, got

                return await self._until(check, timeout, False)


# ---- semaphores ------------------------------------------------------------


class Semaphore(_Acquirable, _Object):
        """threading.Semaphore shared by name: a counter without owners, as
        threading's (and POSIX sem_t): any process may release, and a slot
        taken by a process that dies is not given back (BoundedSemaphore
        gives it back).  With a name, VALUE is used only when the semaphore
        is created."""

        _kind = "semaphore"
        _free = staticmethod(_lib.sem_free)
        _bounded = False

        def __init__(self, value=1, *, name=None, namespace=None):
                if value < 0:
                        raise ValueError("semaphore initial value must be >= 0")
                if value > 0xFFFFFFFF:
                        raise ValueError("an evd semaphore counts at most 4294967295")
                self._setup(name, namespace, (value,), private=False, create=True)

        def _open(self, ctx, name, flags, h):
                value = self._args[0]
                if not flags & _lib.EVD_CREATE:
                        return _lib.sem_open(ctx, name, 0, 0, _lib.EVD_SEM_UNBOUNDED, byref(h))
                return _lib.sem_open(ctx, name, 0, value, flags | _lib.EVD_SEM_UNBOUNDED, byref(h))

        @property
        def _value(self):
                r = _lib.sem_value(self._h)
                if r < 0:
                        raise self._fail(r, "read")
                return r

        def _state_repr(self):
                return f"value={self._value}"

        def _take(self, timeout):
                r = _wait(lambda us: _lib.sem_acquire(self._h, 0, 0, us), timeout)
                if r == -errno.ETIMEDOUT:
                        return False
                if r < 0:
                        raise self._fail(r, "acquire")
                return True

        def acquire(self, blocking=True, timeout=None):
                """Take a slot, as threading.Semaphore.acquire: True, or False
                when not blocking or TIMEOUT seconds passed."""
                if not blocking and timeout is not None:
                        raise ValueError("can't specify timeout for non-blocking acquire")
                return self._take(timeout if blocking else 0)

        __enter__ = acquire

        def release(self, n=1):
                """Give back N slots at once, waking up to N waiters."""
                if n < 1:
                        raise ValueError("n must be one or more")
                if n > 0xFFFFFFFF:
                        raise ValueError("an evd semaphore counts at most 4294967295")
                r = _lib.sem_release(self._h, 0, n)
                if r == -errno.EOVERFLOW:
                        raise ValueError(self._overflow_message())
                if r < 0:
                        raise self._fail(r, "release")

        def _overflow_message(self):
                return "semaphore count would pass 4294967295"



class BoundedSemaphore(Semaphore):
        """threading.BoundedSemaphore shared by name: VALUE slots, each held
        by the process that took it.  Releasing more than this process
        holds raises ValueError; a process that dies gives its slots back."""

        _bounded = True

        def __init__(self, value=1, *, name=None, namespace=None):
                if value == 0:
                        raise ValueError("an evd BoundedSemaphore needs at least one slot")
                super().__init__(value, name=name, namespace=namespace)

        def _open(self, ctx, name, flags, h):
                value = self._args[0]
                if not flags & _lib.EVD_CREATE:
                        value = 0
                return _lib.sem_open(ctx, name, value, value, flags, byref(h))

        def _overflow_message(self):
                return "Semaphore released too many times"

        def _state_repr(self):
                return f"value={self._value}/{self._args[0]}"


# ---- Condition -------------------------------------------------------------


class Condition(_Object):
        """threading.Condition over an evd Lock or RLock (a new private RLock
        when LOCK is None, named NAME.lock when the condition is named).
        wait() releases the lock, waits for a notify and takes it back."""

        _kind = "condition"
        _free = staticmethod(_lib.cond_free)

        def __init__(self, lock=None, *, name=None, namespace=None):
                if lock is None:
                        lock = RLock(name=None if name is None else name + ".lock",
                                     namespace=namespace)
                elif not isinstance(lock, Lock):
                        raise TypeError("an evd Condition needs an evd Lock or RLock, not "
                                        + type(lock).__name__)
                elif lock._namespace != (os.fspath(namespace) if namespace is not None else None):
                        raise ValueError("the lock of an evd Condition must be in its namespace")
                self._setup(name, namespace, (lock,), private=False, create=True)

        def _open(self, ctx, name, flags, h):
                self._lock = self._args[0]
                return _lib.cond_open(ctx, name, self._lock._h, flags, byref(h))

        def __enter__(self):
                return self._lock.__enter__()

        def __exit__(self, *args):
                return self._lock.__exit__(*args)

        def acquire(self, *args, **kwargs):
                """Acquire the condition's lock (its acquire's arguments and result)."""
                return self._lock.acquire(*args, **kwargs)

        def release(self):
                """Release the condition's lock."""
                return self._lock.release()

        @property
        def lock(self):
                """The evd Lock or RLock this condition is bound to."""
                return self._lock

        def _is_owned(self):
                return self._lock._is_owned()

        def _release_save(self):
                return self._lock._release_save()

        def _acquire_restore(self, state):
                self._lock._acquire_restore(state)

        def _state_repr(self):
                return repr(self._lock)

        def wait(self, timeout=None):
                """Release the lock, wait until notified or TIMEOUT seconds pass,
                take the lock again.  False on timeout."""
                if not self._is_owned():
                        raise RuntimeError("cannot wait on un-acquired lock")
                saved = self._lock._release_save()
                try:
                        r = _wait(lambda us: _lib.cond_wait(self._h, us), timeout)
                finally:
                        # evd_cond_wait holds the lock again whatever ended it.
                        self._lock._acquire_restore(saved)
                if r == -errno.ETIMEDOUT:
                        return False
                if r < 0:
                        raise self._fail(r, "wait on")
                if r == _lib.EVD_ABANDONED:
                        warnings.warn(f"evd lock {self._lock.name} was abandoned: its previous "
                                      "owner died holding it, so what it protects may be "
                                      "half-updated", AbandonedLockWarning, stacklevel=2)
                return True

        def wait_for(self, predicate, timeout=None):
                """Wait until PREDICATE() is true, at most TIMEOUT seconds; its
                last result."""
                endtime = None
                waittime = timeout
                result = predicate()
                while not result:
                        if waittime is not None:
                                if endtime is None:
                                        endtime = time.monotonic() + waittime
                                else:
                                        waittime = endtime - time.monotonic()
                                        if waittime <= 0:
                                                break
                        self.wait(waittime)
                        result = predicate()
                return result

        def notify(self, n=1):
                """Wake up to N waiters; RuntimeError unless the lock is held."""
                if not self._is_owned():
                        raise RuntimeError("cannot notify on un-acquired lock")
                if n <= 0:
                        return
                r = _lib.cond_notify(self._h, min(n, 0xFFFFFFFF))
                if r < 0:
                        raise self._fail(r, "notify")

        def notify_all(self):
                """Wake every waiter; RuntimeError unless the lock is held."""
                if not self._is_owned():
                        raise RuntimeError("cannot notify on un-acquired lock")
                r = _lib.cond_notify_all(self._h)
                if r < 0:
                        raise self._fail(r, "notify")

        notifyAll = notify_all


# ---- Barrier ---------------------------------------------------------------


class Barrier(_Object):
        """threading.Barrier shared by name: PARTIES waits, in any threads of
        any processes, trip it.  ACTION runs once per trip in the last
        party to arrive, before any is released; it is set by each process
        on its own object (and travels with a pickled barrier), because the
        last party may be in any of them.  A party that times out, is
        interrupted or dies breaks the barrier: the others get
        threading.BrokenBarrierError, the very class."""

        _kind = "barrier"
        _free = staticmethod(_lib.barrier_free)

        def __init__(self, parties, action=None, timeout=None, *, name=None, namespace=None):
                if parties < 1:
                        raise ValueError("parties must be > 0")
                if parties > 0xFFFFFFFF:
                        raise ValueError("too many parties")
                self._setup(name, namespace, (parties, action, timeout),
                            private=False, create=True)

        def _open(self, ctx, name, flags, h):
                parties, action, timeout = self._args
                self._parties = parties
                self._action = action
                self._timeout = timeout
                self._local = threading.local()
                r = _lib.barrier_open(ctx, name, parties if flags & _lib.EVD_CREATE else 0,
                                      flags, byref(h))
                if r >= 0 and action is not None:
                        self._cb = _lib.ACTION(self._run_action)
                        _lib.barrier_set_action(h, self._cb, None)
                if r >= 0 and not flags & _lib.EVD_CREATE:
                        self._parties = _lib.barrier_parties(h)
                return r

        def _run_action(self, _userdata):
                # In the last party's thread, from libevd: an exception
                # breaks the barrier and is raised again by that party.
                try:
                        self._action()
                        return 0
                except BaseException as e:
                        self._local.error = e
                        return 1

        def _state_repr(self):
                if self.broken:
                        return "broken"
                return f"waiters={self.n_waiting}/{self.parties}"

        def wait(self, timeout=None):
                """Wait until PARTIES parties wait; this one's arrival index
                (0 .. parties-1).  BrokenBarrierError when the barrier is or
                becomes broken, or TIMEOUT seconds pass (which breaks it)."""
                if timeout is None:
                        timeout = self._timeout
                deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
                self._local.error = None
                while True:
                        us = _lib.EVD_FOREVER if deadline is None else \
                                _usec(deadline - time.monotonic())
                        r = _lib.barrier_wait(self._h, us)
                        if r != -errno.EINTR:
                                break
                        # Interrupted after arriving breaks the barrier (as
                        # threading's does on any exception); before, the
                        # barrier never saw this party and it waits again.
                        _run_signal_handlers()
                        if self.broken:
                                raise BrokenBarrierError
                if r >= 0:
                        return r
                err, self._local.error = self._local.error, None
                if err is not None:
                        raise err
                if r in (-errno.EPIPE, -errno.ETIMEDOUT):
                        raise BrokenBarrierError
                raise self._fail(r, "wait at")

        def reset(self):
                """Make the barrier usable again; parties waiting now get
                BrokenBarrierError."""
                r = _lib.barrier_reset(self._h)
                if r < 0:
                        raise self._fail(r, "reset")

        def abort(self):
                """Break the barrier: waiting and later parties get
                BrokenBarrierError until reset()."""
                r = _lib.barrier_abort(self._h)
                if r < 0:
                        raise self._fail(r, "abort")

        @property
        def parties(self):
                """The number of parties that trip the barrier."""
                return self._parties

        @property
        def n_waiting(self):
                """Parties waiting now."""
                r = _lib.barrier_waiting(self._h)
                if r < 0:
                        raise self._fail(r, "read")
                return r

        @property
        def broken(self):
                """True while the barrier is broken."""
                r = _lib.barrier_broken(self._h)
                if r < 0:
                        raise self._fail(r, "read")
                return r == 1
