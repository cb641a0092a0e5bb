/* SPDX-License-Identifier: MIT */
/* cluster-cond.c - conditions of a cluster namespace.  A wait asks the
 * daemon (OP_CLUSTER_COND_WAIT) to put its waiter key and delete its hold
 * of the lock in one etcd txn, so that no notify made after the lock is
 * free can miss it; then it sleeps in the segment, as any waiter does
 * (futex, deadline, progress, cancel, signals), until the daemon drops its
 * waiter record (tag: the key's create revision): its key went, a notify
 * took it.  A timeout or a cancel asks for the key to go
 * (OP_CLUSTER_COND_CANCEL): found gone, a notify came first and counts.
 * Either way the lock is taken back as any cluster acquire, in line.
 * lib/sync.c's condition code never runs on a cluster condition (only on
 * a namespace its daemon serves as a local one). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cancel.h"
#include "client.h"
#include "cluster-cond.h"
#include "cluster-shared.h"
#include "cluster-sem.h"
#include "detail.h"
#include "object.h"
#include "proc.h"
#include "shm.h"

/* One request about condition COND; neither a cancel nor a signal ends it
 * (what it asks must be known to have happened or not).  *LOCALP: the
 * daemon serves the namespace as a local one; then conditions are the
 * segment's. */
static int request(const evd_cond *cond, struct proto_msg *req, struct proto_msg *rep,
                   bool *localp) {
        return cluster_request(cond->o.ctx, cond->o.name, req, rep, true, localp);
}

int cluster_cond_open(evd_ctx *ctx, const char *name, evd_lock *lock, unsigned flags,
                      evd_cond **condp) {
        /* The lock is of this context (the seam checked it), so a cluster
         * lock of this namespace: the daemon binds the condition to it by
         * name in etcd. */
        int r = shm_cond_open(ctx, name, lock, flags, condp);
        if (r == -EINVAL)
                return detail_set(r, "condition %s: its lock %s is not a lock of this cluster "
                                     "namespace in etcd",
                                  name, lock->o.name);
        if (r == -EMEDIUMTYPE)
                return detail_set(r, "condition %s is bound to another lock than %s", name,
                                  lock->o.name);
        return r;
}

int cluster_cond_wait(evd_cond *cond, int64_t timeout) {
        const struct sync_obj *o = &cond->o;
        /* Cancelled: return with the lock still held, nothing done. */
        int r = wait_check_cancel(o->ctx);
        if (r < 0)
                return r;
        pid_t pid = self_pid_get();
        struct proto_msg req = { .op = OP_CLUSTER_COND_WAIT }, rep;
        proto_set_u32(&req, TAG_PID, (uint32_t)pid);
        int64_t before = cluster_lease_now(o->ctx);
        bool local;
        r = request(cond, &req, &rep, &local);
        if (local)
                return shm_cond_wait(cond, timeout);
        if (r < 0)
                return r; /* nothing done: the lock is still the caller's */
        if (!PROTO_HAS(&rep, TAG_SETS) || rep.sets == 0)
                r = -EPROTO;
        uint64_t rev = rep.sets, lease = rep.changed;
        if (r == 0) {
                /* Notified: a notify deleted our key, and with it our record. */
                struct waiter w;
                waiter_init(&w, o->ctx, o->name, timeout);
                r = cluster_wait_record(&w, o, pid, rev, lease, before, false, NULL, true,
                                        "waiting on");
                waiter_done(&w);
        }
        if (r < 0 && rev) {
                /* Our key goes; a notify that took it first counted for
                 * us, as on one host. */
                char why[256] = "";
                const char *d = detail_get(r);
                if (d)
                        snprintf(why, sizeof(why), "%s", d);
                struct proto_msg creq = { .op = OP_CLUSTER_COND_CANCEL }, crep;
                proto_set_u64(&creq, TAG_SETS, rev);
                int rc = request(cond, &creq, &crep, &local);
                if (rc == -ENOENT && (r == -ETIMEDOUT || r == -EINTR))
                        r = 0;
                else if (why[0])
                        r = detail_set(r, "%s", why);
        }
        /* The lock comes back whatever ended the wait, in line as any
         * acquire: neither a cancel nor a signal may leave the caller
         * without it. */
        wait_nointr++;
        int ra = cluster_lock_acquire(cond->lock, 0, 0, EVD_FOREVER);
        wait_nointr--;
        if (ra < 0)
                return ra;
        return ra == EVD_ABANDONED ? ra : r;
}

int cluster_cond_notify(evd_cond *cond, uint32_t n) {
        struct proto_msg req = { .op = OP_CLUSTER_COND_NOTIFY }, rep;
        proto_set_u32(&req, TAG_COUNT, n);
        bool local;
        int r = request(cond, &req, &rep, &local);
        if (local)
                return shm_cond_notify(cond, n);
        return r < 0 ? r : 0;
}
