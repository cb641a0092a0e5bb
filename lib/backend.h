/* SPDX-License-Identifier: MIT */
/* backend.h - the seam between libevd's public calls and what implements
 * them.  Every evd_* function that acts on a namespace or on an object
 * checks the arguments that every backend would check alike (NULL, names,
 * flags, sizes, lengths), then calls one operation of the context's backend
 * through this table (lib/api.c, lib/ctx.c).  The first backend is the
 * shared segment with futexes, served by a local evd (lib/shm.c lists its
 * operations).  docs/backends.md says where the seam lies and how the
 * multi-host mode fits it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "evd.h"

struct seg_init;

/* ---- handles ------------------------------------------------------------
 * A handle carries its context (and through it the backend), its name and
 * what the public accessors report, and the backend's own state for the
 * object: for the shared segment, the object's slot and generation; another
 * backend keeps a pointer to its own (allocated by its open operation, freed
 * by its free operation).  The backend allocates and frees the handle. */

struct evd_event {
        evd_ctx *ctx;
        union {
                struct {
                        uint32_t index; /* shm: the slot */
                        uint32_t gen;   /* shm: the object's generation */
                };
                void *state; /* another backend's */
        };
        enum evd_event_kind kind;
        char name[EVD_NAME_MAX + 1];
};

/* What every semaphore, lock, condition and barrier handle begins with. */
struct sync_obj {
        evd_ctx *ctx;
        union {
                struct {
                        uint32_t index; /* shm: the slot */
                        uint32_t gen;   /* shm: the object's generation */
                };
                void *state; /* another backend's */
        };
        uint32_t type; /* enum evd_type */
        char name[EVD_NAME_MAX + 1];
};

struct evd_sem {
        struct sync_obj o;
};
struct evd_lock {
        struct sync_obj o;
};
struct evd_cond {
        struct sync_obj o;
        evd_lock *lock; /* the lock it was opened with */
};
struct evd_barrier {
        struct sync_obj o;
        int (*action)(void *userdata); /* run by the last party to arrive */
        void *action_userdata;
};

/* A notifier: its context and the descriptor the program polls; the
 * backend allocates it with its own state after these. */
struct evd_notifier {
        evd_ctx *ctx;
        int fd;
};

/* ---- the table ----------------------------------------------------------
 * What the callers have checked already, for every operation: the context
 * and the handles are not NULL; names are valid (evd_name_check); flags hold
 * only the bits the call defines; an event kind is one of enum
 * evd_event_kind; values and failure messages are at most EVD_VALUE_MAX
 * bytes, and a value with a length is not NULL; owners and companions are
 * not negative; a release gives back at least one slot; the handles of a
 * wait_any/wait_all are 1..128, from one context; a condition's lock is
 * from the condition's context.  The size of a new object (a semaphore's
 * slots and initial count, a barrier's parties) is the backend's to check
 * (-EINVAL): its limits are its own.  Structures are the library's own (struct evd_info of
 * this version): callers convert to the size their caller passed.
 * Operations return what the public call they serve documents.
 *
 * Cancelling and interrupting waits are the context's (lib/cancel.c), not
 * an operation: every blocking operation asks wait_check_cancel() before it
 * does anything, so that a cancelled call changes nothing, and sleeps
 * through wait_futex(), which also wakes on evd_cancel() and, on an
 * EVD_OPEN_INTERRUPTIBLE context, after a signal handler ran.  A backend
 * that blocks elsewhere (on a socket) sets cancel_wake below. */
struct evd_backend {
        const char *name; /* "shm" */

        /* -- the namespace -- */

        /* Attach the context (its paths resolved, its runtime directory
         * checked) to the namespace: evd_open's last step. */
        int (*ns_open)(evd_ctx *ctx);
        /* Let go of everything ns_open took: evd_close, and evd_open when
         * it fails at any step (ns_open not called, or failed, included). */
        void (*ns_close)(evd_ctx *ctx);
        /* Create NAME as INIT describes; EXCL: -EEXIST if it exists.  The
         * object open operations use it when asked to create. */
        int (*create)(evd_ctx *ctx, const char *name, const struct seg_init *init, bool excl);
        int (*delete)(evd_ctx *ctx, const char *name);
        /* Every object, as a malloc'ed array of *NP struct evd_info sorted by
         * name (NULL and 0 when there is none). */
        int (*list)(evd_ctx *ctx, struct evd_info **infosp, size_t *np);
        int (*show)(evd_ctx *ctx, const char *name, struct evd_info *info);
        int (*watch_wait)(evd_ctx *ctx, uint32_t *seqp, int64_t timeout);
        /* The host's state in its cluster (cluster 0 in a local namespace). */
        int (*cluster_status)(evd_ctx *ctx, struct evd_cluster_status *st);
        /* A notifier for NAME (NULL: the whole namespace), its descriptor
         * readable from the first change after this call on; -ENOENT when
         * NAME does not exist. */
        int (*notifier_open)(evd_ctx *ctx, const char *name, evd_notifier **notifierp);
        int (*notifier_ack)(evd_notifier *notifier);
        void (*notifier_free)(evd_notifier *notifier);

        /* Optional: called by evd_cancel after the context was marked
         * cancelled, to wake the backend's blocked waits that do not sleep
         * in wait_futex (for instance by writing to an eventfd they poll).
         * It may run in a signal handler: async-signal-safe only.  NULL:
         * every wait of the backend sleeps in wait_futex. */
        void (*cancel_wake)(evd_ctx *ctx);

        /* -- events -- */
        int (*event_open)(evd_ctx *ctx, const char *name, enum evd_event_kind kind,
                          unsigned flags, evd_event **evp);
        void (*event_free)(evd_event *ev);
        int (*event_set)(evd_event *ev, const void *value, size_t len);
        int (*event_clear)(evd_event *ev);
        /* MESSAGE may be NULL (an empty message). */
        int (*event_fail)(evd_event *ev, const char *message);
        int (*event_is_set)(evd_event *ev);
        int (*event_wait)(evd_event *ev, int64_t timeout, void *buf, size_t bufsize,
                          size_t *lenp);
        int (*event_wait_any)(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                              void *buf, size_t bufsize, size_t *lenp);
        int (*event_wait_all)(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                              void *buf, size_t bufsize, size_t *lenp);

        /* -- semaphores -- */
        int (*sem_open)(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial,
                        unsigned flags, evd_sem **semp);
        void (*sem_free)(evd_sem *sem);
        int (*sem_acquire)(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout);
        int (*sem_release)(evd_sem *sem, pid_t owner, uint32_t n);
        int (*sem_value)(evd_sem *sem);
        /* OWNER (0: the caller) is not negative, FENCEP not NULL. */
        int (*sem_fence)(evd_sem *sem, pid_t owner, uint64_t *fencep);

        /* -- locks -- */
        int (*lock_open)(evd_ctx *ctx, const char *name, unsigned flags, evd_lock **lockp);
        void (*lock_free)(evd_lock *lock);
        int (*lock_acquire)(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout);
        int (*lock_release)(evd_lock *lock, pid_t owner);
        /* OWNERP may be NULL. */
        int (*lock_held)(evd_lock *lock, pid_t *ownerp);
        int (*lock_fence)(evd_lock *lock, pid_t owner, uint64_t *fencep);

        /* -- conditions -- */
        int (*cond_open)(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                         evd_cond **condp);
        void (*cond_free)(evd_cond *cond);
        int (*cond_wait)(evd_cond *cond, int64_t timeout);
        /* Wake up to N (>= 1) waiters; UINT32_MAX: every one. */
        int (*cond_notify)(evd_cond *cond, uint32_t n);

        /* -- barriers -- */
        int (*barrier_open)(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                            evd_barrier **barrierp);
        void (*barrier_free)(evd_barrier *barrier);
        int (*barrier_wait)(evd_barrier *barrier, int64_t timeout);
        int (*barrier_abort)(evd_barrier *barrier);
        int (*barrier_reset)(evd_barrier *barrier);
        int (*barrier_parties)(evd_barrier *barrier);
        int (*barrier_waiting)(evd_barrier *barrier);
        int (*barrier_broken)(evd_barrier *barrier);
};

/* The shared-segment backend (lib/shm.c). */
extern const struct evd_backend shm_backend;

/* The cluster namespace's backend (lib/cluster.c): shm_backend with event
 * writes sent to the daemon.  cluster_pick_backend() gives it for a context
 * whose runtime directory the daemon marked as a cluster namespace, and BE
 * otherwise. */
extern const struct evd_backend cluster_backend;
const struct evd_backend *cluster_pick_backend(const evd_ctx *ctx, const struct evd_backend *be);

/* The backend evd_open gives new contexts.  Unit tests install a table of
 * their own with ctx_set_backend_for_test(); NULL puts the default back.
 * Not exported. */
const struct evd_backend *ctx_default_backend(void);
void ctx_set_backend_for_test(const struct evd_backend *be);
