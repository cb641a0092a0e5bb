/* SPDX-License-Identifier: MIT */
/* shm.h - the shared-segment backend's operations: the namespace's in
 * namespace.c (create, through the daemon, in transport.c's request), the
 * objects' in event.c and sync.c.  Each is what the evd_* call of the same
 * name does once the seam (api.c) has checked its arguments; shm.c puts
 * them in the backend table. */
#pragma once

#include "backend.h"

int shm_ns_open(evd_ctx *ctx);
void shm_ns_close(evd_ctx *ctx);
int shm_delete(evd_ctx *ctx, const char *name);
int shm_list(evd_ctx *ctx, struct evd_info **infosp, size_t *np);
int shm_show(evd_ctx *ctx, const char *name, struct evd_info *info);
int shm_watch_wait(evd_ctx *ctx, uint32_t *seqp, int64_t timeout);
int shm_cluster_status(evd_ctx *ctx, struct evd_cluster_status *st);

int shm_event_open(evd_ctx *ctx, const char *name, enum evd_event_kind kind, unsigned flags,
                   evd_event **evp);
void shm_event_free(evd_event *ev);
int shm_event_set(evd_event *ev, const void *value, size_t len);
int shm_event_clear(evd_event *ev);
int shm_event_fail(evd_event *ev, const char *message);
int shm_event_is_set(evd_event *ev);
int shm_event_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize, size_t *lenp);
/* What an auto event's waiter does with the set it sees, in a namespace
 * whose sets are not consumed in the segment alone (lib/cluster.c): ask
 * who gets set SETS.  0: this waiter; -EAGAIN: another one; or an error. */
typedef int (*shm_event_claim_fn)(evd_event *ev, uint64_t sets);
/* shm_event_wait, except that an auto event's set is not consumed in the
 * segment but given to CLAIM (NULL: consumed, as shm_event_wait does);
 * failures, timeouts, cancellation and sleeping are shm_event_wait's. */
int shm_event_wait_claimed(evd_event *ev, int64_t timeout, void *buf, size_t bufsize,
                           size_t *lenp, shm_event_claim_fn claim);
int shm_event_wait_any(evd_event **evs, size_t n, int64_t timeout, size_t *indexp, void *buf,
                       size_t bufsize, size_t *lenp);
/* shm_event_wait_any, with an auto event's set given to CLAIM as
 * shm_event_wait_claimed does. */
int shm_event_wait_any_claimed(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                               void *buf, size_t bufsize, size_t *lenp, shm_event_claim_fn claim);
int shm_event_wait_all(evd_event **evs, size_t n, int64_t timeout, size_t *indexp, void *buf,
                       size_t bufsize, size_t *lenp);

int shm_sem_open(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial, unsigned flags,
                 evd_sem **semp);
void shm_sem_free(evd_sem *sem);
int shm_sem_acquire(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout);
int shm_sem_release(evd_sem *sem, pid_t owner, uint32_t n);
int shm_sem_value(evd_sem *sem);
int shm_sem_fence(evd_sem *sem, pid_t owner, uint64_t *fencep);

int shm_lock_open(evd_ctx *ctx, const char *name, unsigned flags, evd_lock **lockp);
void shm_lock_free(evd_lock *lock);
int shm_lock_acquire(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout);
int shm_lock_release(evd_lock *lock, pid_t owner);
int shm_lock_held(evd_lock *lock, pid_t *ownerp);
int shm_lock_fence(evd_lock *lock, pid_t owner, uint64_t *fencep);

int shm_cond_open(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                  evd_cond **condp);
void shm_cond_free(evd_cond *cond);
int shm_cond_wait(evd_cond *cond, int64_t timeout);
int shm_cond_notify(evd_cond *cond, uint32_t n);

int shm_barrier_open(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                     evd_barrier **barrierp);
void shm_barrier_free(evd_barrier *barrier);
int shm_barrier_wait(evd_barrier *barrier, int64_t timeout);
int shm_barrier_abort(evd_barrier *barrier);
int shm_barrier_reset(evd_barrier *barrier);
int shm_barrier_parties(evd_barrier *barrier);
int shm_barrier_waiting(evd_barrier *barrier);
int shm_barrier_broken(evd_barrier *barrier);

/* notifier.c */
int shm_notifier_open(evd_ctx *ctx, const char *name, evd_notifier **notifierp);
int shm_notifier_ack(evd_notifier *notifier);
void shm_notifier_free(evd_notifier *notifier);

/* The operations of shm_backend (shm.c) that the cluster namespace's
 * backend (cluster.c) has as they are: both tables begin with this list, so
 * that a fix or a new operation here is one for both.  What they do
 * differently (the event writes and waits; the semaphores' and locks'
 * opening, acquiring and releasing; the barriers' opening, waits, aborts
 * and resets; the conditions' opening, waits and notifies) each table
 * names itself. */
#define SHM_BACKEND_SHARED_OPS \
        .ns_open = shm_ns_open, \
        .ns_close = shm_ns_close, \
        .create = client_create, \
        .delete = shm_delete, \
        .list = shm_list, \
        .show = shm_show, \
        .watch_wait = shm_watch_wait, \
        .cluster_status = shm_cluster_status, \
        .notifier_open = shm_notifier_open, \
        .notifier_ack = shm_notifier_ack, \
        .notifier_free = shm_notifier_free, \
        .event_open = shm_event_open, \
        .event_free = shm_event_free, \
        .event_is_set = shm_event_is_set, \
        .event_wait_all = shm_event_wait_all, \
        .sem_free = shm_sem_free, \
        .sem_value = shm_sem_value, \
        .sem_fence = shm_sem_fence, \
        .lock_open = shm_lock_open, \
        .lock_free = shm_lock_free, \
        .lock_held = shm_lock_held, \
        .lock_fence = shm_lock_fence, \
        .cond_free = shm_cond_free, \
        .barrier_free = shm_barrier_free, \
        .barrier_parties = shm_barrier_parties, \
        .barrier_waiting = shm_barrier_waiting, \
        .barrier_broken = shm_barrier_broken
