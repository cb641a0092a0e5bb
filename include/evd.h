/* SPDX-License-Identifier: MIT */
/* evd.h - the public interface of libevd, named synchronisation objects shared
 * by unrelated processes.
 *
 * Conventions
 *   - Every function that can fail returns 0 (or a documented non-negative
 *     value) on success and a negative errno-style code on failure; turn it
 *     into text with evd_strerror().  Constructors hand the new object back
 *     through an out-pointer whose name ends in "p".
 *   - Handles are opaque.  evd_ctx is one connection to one namespace (one
 *     shared segment); an evd_event is one open event in a context.  Two
 *     contexts in one process are independent.
 *   - Thread safety: every function may be called from several threads at
 *     once, on the same or on different handles, except that a handle must
 *     not be freed while another thread still uses it.
 *   - fork(): a child inherits the mapping and may keep using every handle it
 *     inherited; the shared state is the same object in parent and child.
 *   - Durations are microseconds (int64_t) measured on CLOCK_MONOTONIC and
 *     relative to the call; EVD_FOREVER waits without a limit and 0 does not
 *     block.  Waits are restarted after signal handlers run, keeping the
 *     original deadline, unless the context was opened with
 *     EVD_OPEN_INTERRUPTIBLE (then they return -EINTR); evd_cancel() ends
 *     them from another thread.  "Waits" are every call that may block:
 *     evd_event_wait, evd_event_wait_any/all, evd_sem_acquire,
 *     evd_lock_acquire, evd_cond_wait, evd_barrier_wait and
 *     evd_watch_wait.
 *   - ABI: libevd.so.1, symbol version EVD_1 (and EVD_1.1 for the calls
 *     marked "since libevd 1.1").  Structures the library fills in
 *     (struct evd_info, struct evd_cluster_status) are passed with their
 *     size, so that later versions can add fields at their end without
 *     breaking programs built against this header.
 *   - The library is silent: it never prints.
 */
#ifndef EVD_H
#define EVD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; evd_version() gives the library's. */
#define EVD_VERSION_MAJOR 1
#define EVD_VERSION_MINOR 1
#define EVD_VERSION_MICRO 0

#define EVD_FOREVER ((int64_t)-1)

/* Longest object name, in bytes (names are 1..EVD_NAME_MAX bytes of
 * [A-Za-z0-9._:@-], not starting with '.' or '-'). */
#define EVD_NAME_MAX 64
/* Largest value an event can carry, and largest failure message. */
#define EVD_VALUE_MAX 4096

typedef struct evd_ctx evd_ctx;
typedef struct evd_event evd_event;

/* ---- errors -------------------------------------------------------------
 * Besides ordinary errno values, these are the codes with an evd meaning:
 *   -EINVAL        bad argument (name, duration, flags, size)
 *   -ERANGE        a duration too long to represent
 *   -ENOENT        no object of that name (and creation was not asked for)
 *   -EEXIST        an object of that name exists already
 *   -ETIMEDOUT     the wait timed out, or a non-blocking call would block
 *   -EINTR         a wait was interrupted: a signal handler ran (on a
 *                  context opened with EVD_OPEN_INTERRUPTIBLE) or another
 *                  thread called evd_cancel()
 *   -ECANCELED     the event was failed (evd_event_fail); the message is
 *                  handed back where the call says so
 *   -EPIPE         the barrier is broken
 *   -EALREADY      a --once event that is already set was set again
 *   -EOVERFLOW     a release for an owner that does not hold enough
 *   -ESRCH         the owner or companion of an acquire does not run
 *   -EMEDIUMTYPE   the name belongs to an object of another type or kind
 *   -EIDRM         the object was deleted while the handle was open
 *   -ENOSPC        the namespace is full
 *   -EUSERS        the namespace's table of holders is full
 *   -EMSGSIZE      a value or message longer than EVD_VALUE_MAX
 *   -ECONNREFUSED  no daemon runs for that namespace (and none could be
 *                  started)
 *   -EHOSTDOWN     the daemon did not answer within ten seconds
 *   -ENXIO         no runtime directory ($XDG_RUNTIME_DIR unset)
 *   -ENOTDIR       the runtime directory named does not exist
 *   -EUCLEAN       the runtime directory is writable by group or others
 *   -EACCES/-EPERM permission denied (segment or socket)
 *   -EPROTO        the daemon spoke an unknown protocol version
 *   -EBADMSG       the shared segment is corrupt or of another layout
 *                  version
 *   -EIO           the shared segment was cut short (truncated) or had to
 *                  be replaced, and the object with it
 *   -ENOTRECOVERABLE an object's lock is stuck (a process stopped inside
 *                  it, or the segment was scribbled on)
 *   -ENOSYS        futex_waitv is missing (Linux older than 5.16)
 */
const char *evd_strerror(int err);

/* The library's version, "MAJOR.MINOR.MICRO" (static storage). */
const char *evd_version(void);

/* A one-line explanation of the last error ERR that libevd returned in the
 * calling thread, when the code alone cannot say it: which segment file was
 * refused and why (its owner, its mode, its size, a corrupt header).  NULL
 * when the last such error left no detail.  The text is the thread's own
 * and stays valid until its next libevd call. */
const char *evd_error_detail(int err);

/* ---- parsing helpers (used by evctl; handy for bindings) ---------------- */

/* 0 if NAME is a valid object name, else -EINVAL and, when WHY is not NULL,
 * a short explanation such as "character '/' at offset 3 is not allowed". */
int evd_name_check(const char *name, char *why, size_t whylen);

/* Parse a duration: "250ms", "5s", "2m", "1h", "2d", "1.5s", compound as
 * systemd's time spans ("1m30s", "1h 2m"), or bare seconds ("10", "0.25").
 * "0" means do not block, "infinity" stores EVD_FOREVER.  Stores
 * microseconds in *usecp.
 * Returns -EINVAL (with WHY filled in) for anything else, and -ERANGE when
 * the value is larger than about 290 thousand years. */
int evd_duration_parse(const char *s, int64_t *usecp, char *why, size_t whylen);

/* ---- contexts ------------------------------------------------------------ */

enum {
        EVD_OPEN_NO_AUTOSTART = 1u << 0, /* never start a daemon */
        EVD_OPEN_SYSTEM = 1u << 1,       /* the system instance (/run/evd) */
        EVD_OPEN_USER = 1u << 2,         /* the user instance, even as root */
        EVD_OPEN_INTERRUPTIBLE = 1u << 3, /* blocking calls return -EINTR after a
                                           * signal handler ran */
};

/* EVD_OPEN_INTERRUPTIBLE: a wait through the context returns -EINTR when a
 * signal handler installed without SA_RESTART (as signal handlers of
 * Python and of sigaction() without the flag are) runs in the waiting
 * thread while it sleeps, so that the program can act on the signal (a
 * Ctrl-C) and wait again if it wants to.  A handler installed with
 * SA_RESTART (as signal() installs them) restarts the wait, as the kernel
 * restarts other system calls.  Like other system calls, a wait cannot
 * see a handler that ran just before it went to sleep (during its first
 * microseconds, spent spinning): only one that runs while it sleeps.  An
 * interrupted wait changes nothing, as a cancelled one (see evd_cancel),
 * and a call waiting for the daemon's answer (creating, deleting, listing)
 * returns -EINTR as well, though the daemon may have carried it out.
 * Without the flag, waits and requests go on after a handler ran. */

/* Open the namespace served from RUNTIME_DIR (NULL: the instance that
 * EVD_OPEN_SYSTEM or EVD_OPEN_USER names, else $EVD_RUNTIME_DIR, else the
 * system instance for root and the user instance, $XDG_RUNTIME_DIR/evd, for
 * everyone else).  A named directory (RUNTIME_DIR, $EVD_RUNTIME_DIR) must
 * exist (-ENOTDIR); one its group or others may write is refused (-EUCLEAN).
 * Maps the segment when it exists.  When no daemon runs and neither
 * EVD_OPEN_NO_AUTOSTART nor $EVD_NO_AUTOSTART=1 says otherwise, starts one
 * (the binary named by $EVD_DAEMON, else the installed evd) and waits until
 * it is ready.  Calls that go to the daemon give up after ten seconds with
 * -EHOSTDOWN.  Returns 0 or a negative code; *ctxp is set only on
 * success.  On failure, evd_error_detail(code) names the cause when the
 * code alone cannot (which variable was missing, which file was refused). */
int evd_open(evd_ctx **ctxp, const char *runtime_dir, unsigned flags);

/* Close the context and every resource it owns.  Handles opened from it
 * must have been freed first.  Returns NULL. */
evd_ctx *evd_close(evd_ctx *ctx);

/* The runtime directory this context uses (owned by the context). */
const char *evd_runtime_dir(const evd_ctx *ctx);

/* Call CB with USERDATA every INTERVAL microseconds while any wait made
 * through this context blocks, with the time waited so far (for "still
 * waiting" messages).  INTERVAL <= 0 or CB == NULL turns it off.  Set it
 * before sharing the context between threads. */
void evd_set_wait_progress(evd_ctx *ctx, int64_t interval,
                           void (*cb)(void *userdata, const char *name, int64_t waited),
                           void *userdata);

/* Cancel waits on CTX from any thread: every wait through CTX in progress
 * now returns -EINTR at once, and so does every one that starts later,
 * without looking at its object (a wait on an event that is set returns
 * -EINTR too), until evd_cancel_reset(CTX).  The cancel is sticky so that
 * it cannot be lost to a wait that was about to start.  A cancelled wait
 * changes nothing: no slot is taken, no auto event consumed, no notify
 * swallowed (a notify that released the waiter first makes evd_cond_wait
 * return 0).  Two calls do something all the same, each documented with
 * it: evd_cond_wait takes its lock back before it returns -EINTR, and a
 * party that already arrived at a barrier breaks it when cancelled, as a
 * timed-out one does.  Calls that only wait for the daemon's answer are
 * not cancelled (they end within ten seconds).  Use one context per group
 * of waits to cancel together.  On Linux before 5.16 (no futex_waitv) a
 * wait asleep in the kernel sees the cancel within a second.
 * evd_cancel() is async-signal-safe: a SIGINT handler may call it to end
 * the program's waits.  Reset only once the cancelled waits have returned:
 * a wait woken by the cancel that has not looked yet sleeps on after an
 * early reset.  Both return 0, or -EINVAL for a NULL CTX. */
int evd_cancel(evd_ctx *ctx);
int evd_cancel_reset(evd_ctx *ctx);

/* ---- objects in general ----------------------------------------------------- */

/* Creation flags, the same for every type. */
enum {
        EVD_CREATE = 1u << 0, /* create the object if it is missing */
        EVD_EXCL = 1u << 1,   /* with EVD_CREATE: -EEXIST if it exists */
        EVD_EVENT_ANY_KIND = 1u << 2, /* events: accept an existing one of any kind */
        EVD_SEM_UNBOUNDED = 1u << 3,  /* semaphores: no maximum and no owners
                                       * (see evd_sem_open) */
};

enum evd_type {
        EVD_TYPE_EVENT = 1,
        EVD_TYPE_SEMAPHORE = 2,
        EVD_TYPE_LOCK = 3,
        EVD_TYPE_BARRIER = 4,
        EVD_TYPE_CONDITION = 5,
};

/* A lock acquired from an owner that died holding it (as Win32's
 * WAIT_ABANDONED and POSIX's EOWNERDEAD): the caller owns the lock, but
 * what it protects may be half-updated.  A positive return, not an error. */
#define EVD_ABANDONED 1

enum evd_event_kind {
        EVD_EVENT_MANUAL = 0, /* threading.Event: stays set until cleared */
        EVD_EVENT_ONCE = 1,   /* setting it again before a clear is an error */
        EVD_EVENT_AUTO = 2,   /* each set releases exactly one waiter */
};

enum evd_event_state {
        EVD_STATE_CLEAR = 0,
        EVD_STATE_SET = 1,
        EVD_STATE_FAILED = 2,
};

/* Delete the object NAME (through the daemon).  Processes waiting on it
 * return -EIDRM.  -ENOENT when it does not exist. */
int evd_delete(evd_ctx *ctx, const char *name);

/* One process holding a semaphore slot or a lock, or waiting at a
 * barrier. */
struct evd_holder {
        uint32_t pid;
        uint32_t count;      /* slots it holds */
        uint64_t since_usec; /* CLOCK_REALTIME when it took them */
};

#define EVD_INFO_HOLDERS 32 /* holders a snapshot lists at most */

/* A snapshot of one object, as list and show report it.  Calls that fill
 * one take its size (sizeof(struct evd_info) as the caller was built), and
 * fill only the fields that fit: fields are only ever added at the end. */
struct evd_info {
        char name[EVD_NAME_MAX + 1];
        enum evd_type type;
        enum evd_event_kind kind;   /* events */
        enum evd_event_state state; /* events */
        uint32_t waiters;      /* live processes blocked on it now */
        uint64_t sets;         /* events: sets and fails; semaphores and
                                * locks: acquires; barriers: trips */
        uint64_t changed_usec; /* CLOCK_REALTIME of the last change, in us */
        size_t value_len;      /* the value when set, the message when failed */
        char value[EVD_VALUE_MAX + 1]; /* always NUL-terminated */
        uint32_t max;          /* semaphores: slots (0: unbounded, see
                                * evd_sem_open); locks: 1; barriers: parties */
        uint32_t count;        /* semaphores and locks: free slots;
                                * barriers: parties waiting now (with a
                                * last party running its action) */
        uint32_t broken;       /* barriers: broken until reset */
        uint32_t nholders;     /* holders in all (holders[] lists the first) */
        struct evd_holder holders[EVD_INFO_HOLDERS];
        /* libevd 1.1: */
        uint32_t unowned;      /* semaphores: slots neither free nor held,
                                * those it was made without (initial below
                                * max) until releases give them back */
};

/* The size of struct evd_info in libevd 1.0: the least INFO_SIZE the calls
 * below accept (-EINVAL below it). */
#define EVD_INFO_SIZE_1_0 4744
/* Its size in libevd 1.1, which added unowned. */
#define EVD_INFO_SIZE_1_1 4752

/* Every object in the namespace, sorted by name, read straight from the
 * segment (works while the daemon is down).  *infosp
 * is a malloc'ed array of *np entries INFO_SIZE bytes apart (pass
 * sizeof(struct evd_info)); free() it. */
int evd_list(evd_ctx *ctx, struct evd_info **infosp, size_t *np, size_t info_size);

/* One object, read straight from the segment (works while the daemon is
 * down), into INFO of INFO_SIZE bytes.  -ENOENT if there is none. */
int evd_show(evd_ctx *ctx, const char *name, struct evd_info *info, size_t info_size);

/* Wait until anything in the namespace changes (an object created, deleted,
 * set, cleared or failed) after the change counter had the value *seqp, or
 * until TIMEOUT passes.  Pass *seqp = 0 the first time: it returns at once
 * with the current counter.  Updates *seqp.  Returns 0, -ETIMEDOUT, or
 * -EINTR (cancelled or interrupted, *seqp unchanged). */
int evd_watch_wait(evd_ctx *ctx, uint32_t *seqp, int64_t timeout);

/* The state of a cluster namespace's host as its daemon publishes it.  Fields are only ever
 * added at the end; calls take the caller's sizeof. */
struct evd_cluster_status {
        uint32_t cluster;     /* 1: a cluster namespace (the rest is filled); 0: local */
        uint32_t reachable;   /* an etcd member answers the daemon */
        uint64_t revision;    /* the etcd revision this host's view has applied */
        uint64_t fresh_usec;  /* CLOCK_REALTIME when this view was last known current */
        uint64_t unreachable_since_usec; /* CLOCK_REALTIME; 0 while reachable */
        uint64_t lease_deadline_usec;    /* CLOCK_MONOTONIC until which this host's holds are
                                          * surely its own; 0: no lease now */
        uint64_t lease_ttl_usec;
};

/* The size of struct evd_cluster_status in libevd 1.1: the least SIZE
 * evd_cluster_status accepts (-EINVAL below it). */
#define EVD_CLUSTER_STATUS_SIZE_1_1 48

/* The state of the namespace's host in its cluster (since libevd 1.1),
 * read straight from the segment where the daemon publishes it (works
 * while the daemon is down, then showing what it last published), into ST
 * of SIZE bytes (pass sizeof(struct evd_cluster_status); fields past the
 * library's own are zeroed).  A local namespace gives cluster = 0 and every
 * other field 0.  A lease deadline more than its TTL ahead of now cannot
 * have been published by a daemon (a scribbled segment) and reads as 0, no
 * lease.  Returns 0 or a negative code. */
int evd_cluster_status(evd_ctx *ctx, struct evd_cluster_status *st, size_t size);

/* A descriptor that an event loop (poll, epoll, sd-event, asyncio, libuv)
 * can wait on: it becomes readable when object NAME changes (an event set,
 * cleared or failed; a slot acquired or released; a notify; a barrier
 * party arriving, a trip, an abort or reset; the object deleted), or, with
 * NAME NULL, when anything in the namespace changes (an object created or
 * deleted too).  It stays readable until evd_notifier_ack().  It says only
 * that something changed, not what, and may now and then be readable with
 * nothing new (when the daemon moved the namespace to a new segment):
 * look at the object after each wake-up.  Costs no CPU to speak of while
 * nothing changes: one thread of the calling process (with a small stack,
 * and every signal blocked but the faults SIGBUS, SIGSEGV, SIGILL and
 * SIGFPE) sleeps in the kernel, looking once a second.
 * The descriptor is an eventfd, close-on-exec and non-blocking, never 0, 1
 * or 2.  A notifier works only in the process that opened it: a child
 * made by fork() has the descriptor but not the thread, and must not use
 * or free the notifier.  Free every notifier before closing CTX.
 * evd_notifier_open returns 0, -ENOENT when there is no object NAME (it
 * is never created), -EINVAL, or what eventfd() or pthread_create() failed
 * with. */
typedef struct evd_notifier evd_notifier;
int evd_notifier_open(evd_ctx *ctx, const char *name, evd_notifier **notifierp);
/* The descriptor (owned by the notifier: do not close it). */
int evd_notifier_fd(const evd_notifier *notifier);
/* Read the descriptor empty and make it unreadable until the next change
 * after this call.  Returns 0, or -EIDRM once the object was deleted (-EIO
 * when it was lost with a segment the daemon had to replace): the
 * notifier stays quiet from then on, free it. */
int evd_notifier_ack(evd_notifier *notifier);
/* Stop the thread, close the descriptor, free.  Returns NULL. */
evd_notifier *evd_notifier_free(evd_notifier *notifier);

/* ---- events ------------------------------------------------------------- */

/* Open the event NAME.  With EVD_CREATE a missing event is created
 * through the daemon with KIND.  An existing event of another kind gives
 * -EMEDIUMTYPE unless EVD_EVENT_ANY_KIND is passed. */
int evd_event_open(evd_ctx *ctx, const char *name, enum evd_event_kind kind,
                   unsigned flags, evd_event **evp);

/* Free the handle.  Returns NULL. */
evd_event *evd_event_free(evd_event *ev);

const char *evd_event_name(const evd_event *ev);
enum evd_event_kind evd_event_kind(const evd_event *ev);

/* Set the event, storing VALUE (LEN bytes, may be 0; VALUE may be NULL when
 * LEN is 0) for the waiters.  Wakes every waiter (a manual or once event) or
 * exactly one (an auto event).  -EALREADY for a once event already set,
 * -EMSGSIZE for a value longer than EVD_VALUE_MAX. */
int evd_event_set(evd_event *ev, const void *value, size_t len);

/* Clear the event: the flag, the value and any failure are dropped. */
int evd_event_clear(evd_event *ev);

/* Fail the event with MESSAGE: current and later waiters get -ECANCELED
 * and the message, until the event is cleared. */
int evd_event_fail(evd_event *ev, const char *message);

/* 1 if set, 0 if clear or failed, negative on error. */
int evd_event_is_set(evd_event *ev);

/* Wait until the event is set or failed, or TIMEOUT passes.  A waiter that
 * was blocked when a set happened returns success even when a clear follows
 * at once.  An auto event is consumed (cleared) by the waiter it releases.
 * On success (0) the value is copied into BUF (at most BUFSIZE bytes, then
 * NUL-terminated when room remains) and its full length stored in *LENP.
 * On -ECANCELED the failure message is handed back the same way.
 * BUF and LENP may be NULL.  Other returns: -ETIMEDOUT, -EIDRM. */
int evd_event_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize, size_t *lenp);

/* Wait until any of the N events is set or failed.  Stores the index of the
 * one that fired in *indexp and returns what evd_event_wait would have for
 * it (0, -ECANCELED; BUF/LENP get its value or message).  Needs Linux 5.16
 * (futex_waitv); -ENOSYS on older kernels. */
int evd_event_wait_any(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                       void *buf, size_t bufsize, size_t *lenp);

/* Wait until every one of the N events has been set.  Defined for manual
 * and once events only: -EMEDIUMTYPE if any is an auto event.  If one is
 * failed, returns -ECANCELED with its index in *indexp (may be NULL). */
int evd_event_wait_all(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                       void *buf, size_t bufsize, size_t *lenp);

/* ---- semaphores and locks ----------------------------------------------- */

typedef struct evd_sem evd_sem;

/* Open the semaphore NAME.  With EVD_CREATE a missing one is created with
 * MAX slots of which INITIAL are free (INITIAL <= MAX, MAX >= 1); an
 * existing one with another MAX gives -EMEDIUMTYPE unless MAX is 0 (any).
 *
 * With EVD_SEM_UNBOUNDED it is a plain counter, as threading.Semaphore and
 * sem_t are: INITIAL free slots, no maximum (MAX must be 0), and no owners:
 * any process may release, a slot taken is not recorded, and a process that
 * dies holding slots does not give them back.  Opening an unbounded one
 * without the flag (or a bounded one with it) gives -EMEDIUMTYPE unless MAX
 * is 0 and the flag is absent (any). */
int evd_sem_open(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial, unsigned flags,
                 evd_sem **semp);
evd_sem *evd_sem_free(evd_sem *sem);

/* Take one slot, waiting up to TIMEOUT.  The slot belongs to OWNER (0: the
 * calling process) and, when COMPANION is not 0, to that process too: it is
 * given back when neither is alive any more, within about 100 ms while evd
 * runs (and when it starts again otherwise).  -ETIMEDOUT, -EUSERS (the
 * namespace's holder table is full), -EIDRM, -ESRCH (OWNER does not run).
 * An unbounded semaphore has no owners: OWNER and COMPANION must be 0. */
int evd_sem_acquire(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout);

/* Give back N (>= 1) slots held by OWNER (0: the calling process) at once,
 * waking up to N waiters.  -EOVERFLOW, and nothing released, when OWNER
 * holds fewer than N (a bounded semaphore never grows past its max).  On
 * an unbounded semaphore anybody may release (OWNER must be 0); -EOVERFLOW
 * when the count would pass UINT32_MAX. */
int evd_sem_release(evd_sem *sem, pid_t owner, uint32_t n);

/* Free slots now (>= 0; INT_MAX for more, which only an unbounded
 * semaphore can have), or a negative code. */
int evd_sem_value(evd_sem *sem);

/* A fencing token for OWNER's hold: a number that grows with every acquire of the object
 * (for a lock, each hold's is larger than every earlier hold's), so that a resource guarded
 * by the lock can refuse a late writer.  In a cluster namespace it is the hold's etcd
 * revision.  -ENOENT when OWNER holds nothing.
 *
 * (Since libevd 1.1.)  OWNER 0 is the calling process.  On one host the
 * token is the object's acquire count after the acquire (the "sets" that
 * evd_show reports).  An owner holding several slots has the token of its
 * newest acquire among them, and keeps it when it releases some.  An
 * unbounded semaphore records no holds: -ENOENT. */
int evd_sem_fence(evd_sem *sem, pid_t owner, uint64_t *fencep);

typedef struct evd_lock evd_lock;

/* Open (with EVD_CREATE: create if missing) the lock NAME. */
int evd_lock_open(evd_ctx *ctx, const char *name, unsigned flags, evd_lock **lockp);
evd_lock *evd_lock_free(evd_lock *lock);

/* Acquire the lock for OWNER/COMPANION as evd_sem_acquire does.  Returns 0,
 * or EVD_ABANDONED when it was taken back from an owner that died holding
 * it (the caller owns it now), or a negative code. */
int evd_lock_acquire(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout);

/* Release the lock held by OWNER (0: the calling process); -EOVERFLOW when
 * OWNER does not hold it. */
int evd_lock_release(evd_lock *lock, pid_t owner);

/* Whether the lock is held now, without waiting or a snapshot: 1 held
 * (*OWNERP, when not NULL, gets the holder's pid), 0 free (*OWNERP 0), or
 * a negative code.  A lock whose holder died reads free once evd gave it
 * back. */
int evd_lock_held(evd_lock *lock, pid_t *ownerp);

/* OWNER's fencing token for the lock (0: the calling process), as
 * evd_sem_fence (since libevd 1.1).  On one host it is the lock's acquire
 * count after the acquire that gave OWNER the lock, the "sets" that
 * evd_show reports: every hold's token is larger than every earlier
 * hold's, even when an earlier owner was killed.  -ENOENT when OWNER does
 * not hold the lock. */
int evd_lock_fence(evd_lock *lock, pid_t owner, uint64_t *fencep);

/* ---- conditions ---------------------------------------------------------- */

typedef struct evd_cond evd_cond;

/* Open (with EVD_CREATE: create if missing) the condition NAME bound
 * to LOCK; a condition bound to another lock gives -EMEDIUMTYPE. */
int evd_cond_open(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                  evd_cond **condp);
evd_cond *evd_cond_free(evd_cond *cond);

/* With the lock held by the calling process: release it, wait until
 * notified (or TIMEOUT passes), and acquire it again, whatever the outcome.
 * Returns 0, -ETIMEDOUT, or EVD_ABANDONED when re-acquiring took the lock
 * back from an owner that died holding it: that notice is given once, so
 * it wins over whatever ended the wait (a timeout, a cancel, a signal), as
 * pthread_cond_wait's EOWNERDEAD does.  A process that is killed while
 * waiting leaves nothing behind.  Cancelled or interrupted (see
 * evd_cancel, EVD_OPEN_INTERRUPTIBLE), it returns -EINTR with the lock
 * held again all the same: taking the lock back (and asking the daemon
 * for the namespace's new segment on the way, if it must) is neither
 * cancelled nor interrupted, and may wait for it.  Already cancelled when
 * called, it returns -EINTR at once without releasing the lock. */
int evd_cond_wait(evd_cond *cond, int64_t timeout);

/* Wake up to N waiters (evd_cond_notify_all: every one). */
int evd_cond_notify(evd_cond *cond, uint32_t n);
int evd_cond_notify_all(evd_cond *cond);

/* ---- barriers ------------------------------------------------------------- */

typedef struct evd_barrier evd_barrier;

/* Open (with EVD_CREATE: create if missing) the barrier NAME for
 * PARTIES processes; another party count gives -EMEDIUMTYPE (0: any). */
int evd_barrier_open(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                     evd_barrier **barrierp);
evd_barrier *evd_barrier_free(evd_barrier *barrier);

/* Wait until PARTIES processes wait; returns this one's arrival index
 * (0 .. parties-1), as threading.Barrier.wait does.  -ETIMEDOUT breaks the
 * barrier for everyone; -EPIPE: the barrier is broken (a party timed out,
 * was killed, or it was aborted or reset) until evd_barrier_reset().
 * While the last party of a round runs its action (see
 * evd_barrier_set_action) the round is full: a process that comes then
 * waits to arrive in the next round, and if its TIMEOUT passes meanwhile
 * it returns -ETIMEDOUT without breaking anything, as it never arrived.
 * -EINTR: cancelled or interrupted after arriving, the party leaves as one
 * that timed out does, breaking the barrier for everyone (as
 * threading.Barrier breaks on any exception in wait, KeyboardInterrupt
 * included): a round that lost a party cannot trip as meant.  Cancelled
 * before it arrived, it returns -EINTR and the barrier never sees it.  A
 * party that finds the barrier tripped as it leaves returns its index. */
int evd_barrier_wait(evd_barrier *barrier, int64_t timeout);

/* The action this handle runs when its party is the last to arrive: after
 * every party has arrived and before any is released, ACTION(USERDATA)
 * runs once in that party's thread (the barrier is not locked meanwhile:
 * the action may use it, e.g. read evd_barrier_waiting()).  A non-zero
 * return breaks the barrier (every party, the one that ran it too, gets
 * -EPIPE), as does that party's death, another party's timeout, or an
 * abort meanwhile; a reset meanwhile sends every party of the round away
 * with -EPIPE.  Only the handle of the last party counts: each process
 * sets the action on its own handle.  ACTION NULL: none.  Returns 0, or
 * -EINVAL for a NULL BARRIER.  The action must return: one that leaves by
 * longjmp() or ends its thread leaves the round unfinished until a reset,
 * and one that waits at its own barrier waits for itself (until its
 * timeout).  Set it before the handle is shared between
 * threads. */
int evd_barrier_set_action(evd_barrier *barrier, int (*action)(void *userdata), void *userdata);

/* Cheap reads, without a snapshot (the object is locked for a few loads):
 * the parties the barrier was made for; how many wait now (the last party
 * running its action counts); 1 if broken, 0 if not.  Negative codes on
 * error (-EIDRM once deleted). */
int evd_barrier_parties(evd_barrier *barrier);
int evd_barrier_waiting(evd_barrier *barrier);
int evd_barrier_broken(evd_barrier *barrier);

/* Break the barrier: waiting and later parties get -EPIPE until a reset. */
int evd_barrier_abort(evd_barrier *barrier);

/* Make the barrier usable again; parties waiting now get -EPIPE. */
int evd_barrier_reset(evd_barrier *barrier);

#ifdef __cplusplus
}
#endif

#endif
