/* SPDX-License-Identifier: MIT */
/* object.h - what every object type of the library shares: locking an
 * object in the current segment, publishing a change, and sleeping until it
 * changes (bounded spin, then futex, with deadline and progress; slices
 * only while no daemon serves the namespace) */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "futex.h"

/* A locked object: the mapping it was locked in and its slot there. */
struct locked {
        struct seg *seg;
        struct seg_obj *obj;
};

/* Lock slot INDEX and make sure it still holds the object of generation GEN
 * and TYPE, in the namespace's current segment (moving to a new one when the
 * daemon retired ours).  -EIDRM when the object was deleted. */
int obj_lock(evd_ctx *ctx, uint32_t index, uint32_t gen, uint32_t type, struct locked *l);
void obj_unlock(struct locked *l);
/* Publish a change made under the lock (see seg_obj_unlock_changed). */
void obj_unlock_changed(struct locked *l, bool wake);
/* The same, waking at most NWAKE sleepers (seg_obj_unlock_changed_n). */
void obj_unlock_changed_n(struct locked *l, uint32_t nwake);

/* Look NAME (valid: the seam checked it) up; create it through the
 * backend's create (the daemon) with INIT when CREATE and it is missing.
 * Checks the type; the caller checks the rest. */
int obj_open(evd_ctx *ctx, const char *name, const struct seg_init *init, bool create, bool excl,
             uint32_t *indexp, uint32_t *genp);

/* One blocking call's wait. */
struct waiter {
        evd_ctx *ctx;
        const char *name;
        uint64_t start, deadline, next_progress;
        struct seg *reg_seg; /* where reg_slot is registered */
        int reg_slot;
        bool spun;
        unsigned sleeps; /* times it slept (or would have) so far */
};

void waiter_init(struct waiter *w, evd_ctx *ctx, const char *name, int64_t timeout);
void waiter_done(struct waiter *w);
/* Sleep until one of the N words (in the mapping S) differs from its
 * expected value, or the deadline passes.  Returns 0 to re-check,
 * -ETIMEDOUT, -EINTR (the context was cancelled, or a signal handler ran
 * and it is interruptible: see cancel.h), or -ENOSYS. */
int waiter_sleep(struct waiter *w, struct seg *s, struct evd_futex_waitv *v, unsigned n,
                 uint32_t obj_index);
/* Fill V to sleep on O's futex word as it is now. */
void fill_waitv(struct evd_futex_waitv *v, struct seg_obj *o);

/* Whether no daemon looks after the namespace of S right now (none runs, or
 * it is stopped, or its heartbeat is stale: alive but not doing its job):
 * then waiters sleep in slices and give back what dead holders held
 * themselves. */
bool daemon_absent(const struct seg *s);

/* Fill V to sleep on S's daemon_alive word as well, marking it contended,
 * when a daemon serves S (alive, beating, not stopped): returns 1, and the
 * sleep needs no slice; 0 otherwise.  After the sleep (whatever ended it),
 * daemon_guard_woken must be called: it passes on the kernel's wake-up at
 * the daemon's death, and takes back what daemon_guard left in the
 * thread's robust list. */
int daemon_guard(struct seg *s, struct evd_futex_waitv *v);
void daemon_guard_woken(const struct evd_futex_waitv *v);

/* Test hook (sync.c): called by a barrier party whose deadline passed,
 * right before it locks the barrier again to break it. */
extern void (*barrier_timeout_hook)(void);

/* Test hooks: the longest a waiter (object.c) and a notifier thread
 * (notifier.c) sleep without being woken.  Not exported. */
extern uint64_t waiter_slice_usec;
extern _Atomic uint64_t notifier_slice_usec;
/* Test hooks: how many sleeps of waiters (object.c) and notifier threads
 * (notifier.c) had a slice's timeout, for want of a daemon to count on. */
extern _Atomic unsigned waiter_sliced_sleeps;
extern _Atomic unsigned notifier_sliced_sleeps;
