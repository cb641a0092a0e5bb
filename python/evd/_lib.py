# SPDX-License-Identifier: MIT
"""ctypes declarations of libevd 1.0 (include/evd.h), and the contexts.

Only the calls the package uses are declared.  The library is
$EVD_LIBEVD when set (the tests point it at the build tree), else
libevd.so.1 where the loader finds it, else in the libdir it was
installed to (_paths.py, written by meson install).
"""

import ctypes
import os
import threading



def _load():
        path = os.environ.get("EVD_LIBEVD")
        if path:
                candidates = [path]
        else:
                candidates = ["libevd.so.1"]
                try:
                        from . import _paths  # written by meson install
                        candidates.append(os.path.join(_paths.LIBDIR, "libevd.so.1"))
                except ImportError:
                        pass
        errors = []
        for c in candidates:
                try:
                        return ctypes.CDLL(c)
                except OSError as e:
                        errors.append(str(e))
        raise ImportError("evd: cannot load libevd: " + "; ".join(errors))


lib = _load()

EVD_FOREVER = -1
EVD_NAME_MAX = 64
EVD_VALUE_MAX = 4096
EVD_ABANDONED = 1

EVD_OPEN_INTERRUPTIBLE = 1 << 3

EVD_CREATE = 1 << 0
EVD_EXCL = 1 << 1
EVD_EVENT_ANY_KIND = 1 << 2
EVD_SEM_UNBOUNDED = 1 << 3

EVD_EVENT_MANUAL = 0

_c = ctypes
_p = _c.c_void_p
_pp = _c.POINTER(_c.c_void_p)
_i64 = _c.c_int64
_u32 = _c.c_uint32
_pid = _c.c_int


def _decl(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)
        return f


strerror = _decl("evd_strerror", _c.c_char_p, _c.c_int)
version = _decl("evd_version", _c.c_char_p)
error_detail = _decl("evd_error_detail", _c.c_char_p, _c.c_int)
name_check = _decl("evd_name_check", _c.c_int, _c.c_char_p, _c.c_char_p, _c.c_size_t)

evd_open = _decl("evd_open", _c.c_int, _pp, _c.c_char_p, _c.c_uint)
runtime_dir = _decl("evd_runtime_dir", _c.c_char_p, _p)
delete = _decl("evd_delete", _c.c_int, _p, _c.c_char_p)

notifier_open = _decl("evd_notifier_open", _c.c_int, _p, _c.c_char_p, _pp)
notifier_fd = _decl("evd_notifier_fd", _c.c_int, _p)
notifier_ack = _decl("evd_notifier_ack", _c.c_int, _p)
notifier_free = _decl("evd_notifier_free", _p, _p)

event_open = _decl("evd_event_open", _c.c_int, _p, _c.c_char_p, _c.c_int, _c.c_uint, _pp)
event_free = _decl("evd_event_free", _p, _p)
event_set = _decl("evd_event_set", _c.c_int, _p, _c.c_char_p, _c.c_size_t)
event_clear = _decl("evd_event_clear", _c.c_int, _p)
event_fail = _decl("evd_event_fail", _c.c_int, _p, _c.c_char_p)
event_is_set = _decl("evd_event_is_set", _c.c_int, _p)
event_wait = _decl("evd_event_wait", _c.c_int, _p, _i64, _c.c_void_p, _c.c_size_t,
                   _c.POINTER(_c.c_size_t))

sem_open = _decl("evd_sem_open", _c.c_int, _p, _c.c_char_p, _u32, _u32, _c.c_uint, _pp)
sem_free = _decl("evd_sem_free", _p, _p)
sem_acquire = _decl("evd_sem_acquire", _c.c_int, _p, _pid, _pid, _i64)
sem_release = _decl("evd_sem_release", _c.c_int, _p, _pid, _u32)
sem_value = _decl("evd_sem_value", _c.c_int, _p)

lock_open = _decl("evd_lock_open", _c.c_int, _p, _c.c_char_p, _c.c_uint, _pp)
lock_free = _decl("evd_lock_free", _p, _p)
lock_acquire = _decl("evd_lock_acquire", _c.c_int, _p, _pid, _pid, _i64)
lock_release = _decl("evd_lock_release", _c.c_int, _p, _pid)
lock_held = _decl("evd_lock_held", _c.c_int, _p, _c.POINTER(_pid))

cond_open = _decl("evd_cond_open", _c.c_int, _p, _c.c_char_p, _p, _c.c_uint, _pp)
cond_free = _decl("evd_cond_free", _p, _p)
cond_wait = _decl("evd_cond_wait", _c.c_int, _p, _i64)
cond_notify = _decl("evd_cond_notify", _c.c_int, _p, _u32)
cond_notify_all = _decl("evd_cond_notify_all", _c.c_int, _p)

ACTION = _c.CFUNCTYPE(_c.c_int, _p)
barrier_open = _decl("evd_barrier_open", _c.c_int, _p, _c.c_char_p, _u32, _c.c_uint, _pp)
barrier_free = _decl("evd_barrier_free", _p, _p)
barrier_wait = _decl("evd_barrier_wait", _c.c_int, _p, _i64)
barrier_set_action = _decl("evd_barrier_set_action", _c.c_int, _p, ACTION, _p)
barrier_parties = _decl("evd_barrier_parties", _c.c_int, _p)
barrier_waiting = _decl("evd_barrier_waiting", _c.c_int, _p)
barrier_broken = _decl("evd_barrier_broken", _c.c_int, _p)
barrier_abort = _decl("evd_barrier_abort", _c.c_int, _p)
barrier_reset = _decl("evd_barrier_reset", _c.c_int, _p)


def error(code, what):
        """The OSError for libevd's negative CODE, naming WHAT failed.

        OSError picks the subclass from the errno (FileNotFoundError for
        -ENOENT, PermissionError for -EACCES, ...)."""
        msg = strerror(code).decode(errors="replace")
        detail = error_detail(code)
        if detail:
                msg += f" ({detail.decode(errors='replace')})"
        return OSError(-code, f"{what}: {msg}")


# One context per namespace and process.  libevd's handles stay usable in
# a fork()ed child (the mapping is inherited), so a child keeps its
# parent's contexts.  Contexts are opened EVD_OPEN_INTERRUPTIBLE: a wait
# returns -EINTR once Python's signal handler ran (Python installs its
# handlers without SA_RESTART), and the caller lets the handler raise
# KeyboardInterrupt before it waits again.
_contexts = {}
_contexts_lock = threading.Lock()


def context(namespace):
        key = os.fspath(namespace) if namespace is not None else None
        with _contexts_lock:
                ctx = _contexts.get(key)
                if ctx is None:
                        p = _c.c_void_p()
                        arg = os.fsencode(key) if key is not None else None
                        r = evd_open(_c.byref(p), arg, EVD_OPEN_INTERRUPTIBLE)
                        if r < 0:
                                raise error(r, "cannot open the evd namespace"
                                            + (f" in {key}" if key else ""))
                        ctx = _contexts[key] = p
                return ctx


def _after_fork_in_child():
        # The lock may have been held by another thread of the parent.
        global _contexts_lock
        _contexts_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
