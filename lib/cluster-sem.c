/* SPDX-License-Identifier: MIT */
/* cluster-sem.c - semaphores and locks of a cluster namespace: an acquire
 * asks the daemon to put a contender key in etcd (OP_CLUSTER_SEM_ACQUIRE),
 * then waits in the segment, as any waiter does (futex, deadline,
 * progress, cancel, signals), until the daemon records its hold there: a
 * hold record of the object whose tag is the key's create revision
 * (daemon/cluster-sem.c).  Releases and give-ups are requests too.  Reads
 * (value, held, show) are the segment's: the daemon publishes the free
 * count of the whole cluster there. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cancel.h"
#include "client.h"
#include "cluster-shared.h"
#include "cluster-sem.h"
#include "detail.h"
#include "object.h"
#include "proc.h"
#include "shm.h"

/* One request about object O; neither a cancel nor a signal ends it: what
 * it asks (a key put or deleted) must be known to have happened or not.
 * LOCALP as cluster_request's. */
static int request(const struct sync_obj *o, struct proto_msg *req, struct proto_msg *rep,
                   bool *localp) {
        return cluster_request(o->ctx, o->name, req, rep, true, localp);
}

/* A lock's hold is there (under its lock L): EVD_ABANDONED, told once,
 * when the daemon set the flag for it (its predecessor left without a
 * clean release). */
static int lock_hold_found(struct locked *l) {
        if (!l->obj->u.sem.abandoned) {
                obj_unlock(l);
                return 0;
        }
        l->obj->u.sem.abandoned = 0;
        obj_unlock_changed(l, false);
        return EVD_ABANDONED;
}

/* Gone from the line: the contender key REV of O is deleted (if the hold
 * came meanwhile, that is a release).  Returns R, what ended the wait,
 * with its detail kept. */
static int cancel(const struct sync_obj *o, uint64_t rev, int r) {
        struct proto_msg creq = { .op = OP_CLUSTER_SEM_CANCEL }, crep;
        uint8_t valbuf[EVD_VALUE_MAX];
        char why[256] = "";
        const char *d = detail_get(r);
        if (d)
                snprintf(why, sizeof(why), "%s", d);
        proto_set_u64(&creq, TAG_SETS, rev);
        (void)cluster_request_raw(o->ctx, o->name, &creq, &crep, valbuf, true);
        /* The request may have cleared the words of what ended the wait. */
        return why[0] ? detail_set(r, "%s", why) : r;
}

static int acquire(const struct sync_obj *o, pid_t owner, pid_t companion, int64_t timeout,
                   bool lock, bool *localp) {
        *localp = false;
        if (owner == 0)
                owner = self_pid_get();
        int r = wait_check_cancel(o->ctx);
        if (r < 0)
                return r;
        /* A host that has no lease, or loses the one its key was put
         * with, puts its key again once it has a new one: the waiter keeps
         * waiting (at the end of the line), as long as its timeout allows.
         * Only a try (timeout 0) is told at once. */
        bool requeue = timeout != 0;
        struct waiter w;
        waiter_init(&w, o->ctx, o->name, timeout);
        uint64_t rev = 0;
        for (;;) {
                struct proto_msg req = { .op = OP_CLUSTER_SEM_ACQUIRE }, rep;
                /* The lease the daemon may refuse is this one or a newer
                 * one, never one it gets after answering: read before. */
                int64_t asked = cluster_lease_now(o->ctx);
                proto_set_u32(&req, TAG_PID, (uint32_t)owner);
                proto_set_u32(&req, TAG_INDEX, (uint32_t)(companion > 0 ? companion : 0));
                r = request(o, &req, &rep, localp);
                if (*localp)
                        break;
                if (r == -ENOLINK && requeue) {
                        r = cluster_wait_lease(&w, o, asked);
                        if (r < 0)
                                break;
                        continue;
                }
                if (r < 0)
                        break;
                if (!PROTO_HAS(&rep, TAG_SETS) || rep.sets == 0) {
                        r = -EPROTO;
                        break;
                }
                rev = rep.sets;
                uint64_t lease = rep.changed;
                r = cluster_wait_record(&w, o, owner, rev, lease, asked, true,
                                        lock ? lock_hold_found : NULL, false, "waiting for");
                if (r != -ENOLINK || !requeue)
                        break;
                cancel(o, rev, r);
                rev = 0;
                /* Any lease will do: the one the key was put with is gone
                 * for good, or the header had not shown it yet (no lease
                 * before the request, and the reply came first): then the
                 * key is put again with it. */
                r = cluster_wait_lease(&w, o, 0);
                if (r < 0)
                        break;
        }
        waiter_done(&w);
        if (r < 0 && rev)
                r = cancel(o, rev, r);
        return r;
}

static int release(const struct sync_obj *o, pid_t owner, uint32_t n, bool *localp) {
        if (owner == 0)
                owner = self_pid_get();
        struct proto_msg req = { .op = OP_CLUSTER_SEM_RELEASE }, rep;
        proto_set_u32(&req, TAG_PID, (uint32_t)owner);
        proto_set_u32(&req, TAG_COUNT, n);
        return request(o, &req, &rep, localp);
}

int cluster_sem_open(evd_ctx *ctx, const char *name, uint32_t max, uint32_t initial,
                     unsigned flags, evd_sem **semp) {
        /* A plain counter has no owners, so nothing to give back for a
         * host that goes: not a cluster object (docs/cluster.md). */
        if (flags & EVD_SEM_UNBOUNDED)
                return detail_set(-EOPNOTSUPP, "unbounded semaphores are not supported in a "
                                               "cluster namespace");
        return shm_sem_open(ctx, name, max, initial, flags, semp);
}

int cluster_sem_acquire(evd_sem *sem, pid_t owner, pid_t companion, int64_t timeout) {
        bool local;
        int r = acquire(&sem->o, owner, companion, timeout, false, &local);
        return local ? shm_sem_acquire(sem, owner, companion, timeout) : r;
}

int cluster_sem_release(evd_sem *sem, pid_t owner, uint32_t n) {
        bool local;
        int r = release(&sem->o, owner, n, &local);
        return local ? shm_sem_release(sem, owner, n) : r;
}

int cluster_lock_acquire(evd_lock *lock, pid_t owner, pid_t companion, int64_t timeout) {
        bool local;
        int r = acquire(&lock->o, owner, companion, timeout, true, &local);
        return local ? shm_lock_acquire(lock, owner, companion, timeout) : r;
}

int cluster_lock_release(evd_lock *lock, pid_t owner) {
        bool local;
        int r = release(&lock->o, owner, 1, &local);
        return local ? shm_lock_release(lock, owner) : r;
}
