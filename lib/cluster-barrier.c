/* SPDX-License-Identifier: MIT */
/* cluster-barrier.c - barriers of a cluster namespace (the cluster
 * backend's, lib/cluster.c): the round is decided in etcd by the daemons
 * (daemon/cluster-barrier.c, docs/cluster.md), never by the segment's
 * barrier code.  A party asks its daemon to arrive (the reply is its
 * arrival index and the round), then sleeps on the segment's mirror of
 * the barrier until the round's generation moves (tripped, or reset: its
 * arrival record, which the daemon keeps, says which) or it is broken.
 * Its own timeout breaks the round through the daemon, as on one host. */
#include <errno.h>
#include <string.h>

#include "cancel.h"
#include "cluster-barrier.h"
#include "cluster-shared.h"
#include "detail.h"
#include "holders.h"
#include "object.h"
#include "proc.h"
#include "shm.h"

/* lib/sync.c's tag of an arrival record whose round was reset. */
#define BARRIER_RESET UINT64_MAX

/* One request about barrier B; a refusal's reason, when the daemon gives
 * one, becomes the call's detail.  The reply in *REP (its value not kept). */
static int bar_request(evd_barrier *b, struct proto_msg *req, struct proto_msg *rep) {
        return cluster_request(b->o.ctx, b->o.name, req, rep, false, NULL);
}

int cluster_barrier_open(evd_ctx *ctx, const char *name, uint32_t parties, unsigned flags,
                         evd_barrier **barrierp) {
        if ((flags & EVD_CREATE) && parties > CLUSTER_BARRIER_PARTIES_MAX)
                return detail_set(-EINVAL,
                                  "a barrier of a cluster namespace has at most %u parties "
                                  "(its trip is one etcd transaction, and etcd allows %u "
                                  "operations in one by default)",
                                  CLUSTER_BARRIER_PARTIES_MAX, CLUSTER_BARRIER_PARTIES_MAX + 1);
        return shm_barrier_open(ctx, name, parties, flags, barrierp);
}

/* Under the lock: our arrival record of round GEN, or -1. */
static int find_record(struct locked *l, const struct sync_obj *o, uint64_t gen) {
        uint32_t cursor = 0;
        int slot;
        while ((slot = seg_holder_find_next(l->seg, o->index, o->gen, self_pid_get(), &cursor)) >=
               0)
                if (l->seg->hdr->holders[slot].tag == gen)
                        return slot;
        /* A reset round's record. */
        cursor = 0;
        while ((slot = seg_holder_find_next(l->seg, o->index, o->gen, self_pid_get(), &cursor)) >=
               0)
                if (l->seg->hdr->holders[slot].tag == BARRIER_RESET)
                        return slot;
        return -1;
}

/* Under the lock, once round GEN0 is over for us: our index when it
 * tripped, -EPIPE when it was reset; our record goes. */
static int leave(struct locked *l, const struct sync_obj *o, uint64_t gen0, int index) {
        int slot = find_record(l, o, gen0);
        bool reset = slot >= 0 && l->seg->hdr->holders[slot].tag == BARRIER_RESET;
        if (slot >= 0)
                seg_holder_drop(l->seg, slot, 1);
        return reset ? -EPIPE : index;
}

/* Not arrived yet, and the round is full (its last party runs its action,
 * or the trip is on its way): sleep until the barrier changes. */
static int wait_round_over(evd_barrier *b, struct waiter *w) {
        struct locked l;
        int r = obj_lock(b->o.ctx, b->o.index, b->o.gen, b->o.type, &l);
        if (r < 0)
                return r;
        if (l.obj->u.barrier.broken) {
                obj_unlock(&l);
                return -EPIPE;
        }
        if (!l.obj->u.barrier.tripping) {
                obj_unlock(&l);
                return 0;
        }
        struct evd_futex_waitv v;
        fill_waitv(&v, l.obj);
        obj_unlock(&l);
        return waiter_sleep(w, l.seg, &v, 1, b->o.index);
}

int cluster_barrier_wait(evd_barrier *barrier, int64_t timeout) {
        const struct sync_obj *o = &barrier->o;
        /* Cancelled before arriving: the barrier does not see us. */
        int r = wait_check_cancel(o->ctx);
        if (r < 0)
                return r;
        struct waiter w;
        waiter_init(&w, o->ctx, o->name, timeout);
        struct proto_msg rep;
        int index;
        for (;;) {
                struct proto_msg req = { .op = OP_CLUSTER_BAR_ARRIVE };
                proto_set_u32(&req, TAG_PID, (uint32_t)self_pid_get());
                proto_set_u32(&req, TAG_FLAGS, barrier->action ? 1 : 0);
                index = bar_request(barrier, &req, &rep);
                if (index >= 0)
                        break;
                if (index == -EAGAIN) {
                        /* Lost every race for a slot the daemon tried:
                         * again, unless cancelled meanwhile. */
                        r = wait_check_cancel(o->ctx);
                        if (r < 0)
                                goto out;
                        continue;
                }
                if (index != -EBUSY) {
                        r = index;
                        goto out;
                }
                /* Not arrived: a timeout here breaks nothing. */
                r = wait_round_over(barrier, &w);
                if (r < 0)
                        goto out;
        }
        uint64_t gen0 = rep.sets;
        if (PROTO_HAS(&rep, TAG_STATE) && rep.state == 1) {
                /* We completed the round and have an action: run it with
                 * every party arrived and none released, then trip (or
                 * break, when it failed).  Our arrival record makes our
                 * death in it break the round. */
                int ar = barrier->action(barrier->action_userdata);
                struct proto_msg req = { .op = OP_CLUSTER_BAR_TRIP };
                proto_set_u64(&req, TAG_SETS, gen0);
                proto_set_u32(&req, TAG_STATE, ar != 0);
                (void)bar_request(barrier, &req, &rep);
        }
        for (;;) {
                struct locked l;
                wait_nointr++;
                r = obj_lock(o->ctx, o->index, o->gen, o->type, &l);
                wait_nointr--;
                if (r < 0)
                        break;
                /* Rounds only move forward; a mirror that has not shown
                 * our round yet (it lagged behind our arrival) is waited
                 * for. */
                const struct seg_barrier *b = &l.obj->u.barrier;
                if (b->generation > gen0) {
                        r = leave(&l, o, gen0, index);
                        obj_unlock(&l);
                        break;
                }
                if (b->broken && b->generation == gen0) {
                        (void)leave(&l, o, gen0, index);
                        obj_unlock(&l);
                        r = -EPIPE;
                        break;
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                obj_unlock(&l);
                r = waiter_sleep(&w, l.seg, &v, 1, o->index);
                if (r == -ETIMEDOUT || r == -EINTR) {
                        /* As on one host: a party that gives up breaks the
                         * round for every party, on every host. */
                        if (r == -ETIMEDOUT && barrier_timeout_hook)
                                barrier_timeout_hook();
                        int timed_out = r;
                        struct proto_msg req = { .op = OP_CLUSTER_BAR_BREAK };
                        proto_set_u32(&req, TAG_STATE, CLUSTER_BAR_TIMEOUT);
                        proto_set_u64(&req, TAG_SETS, gen0);
                        proto_set_u32(&req, TAG_PID, (uint32_t)self_pid_get());
                        wait_nointr++;
                        int rb = bar_request(barrier, &req, &rep);
                        r = obj_lock(o->ctx, o->index, o->gen, o->type, &l);
                        wait_nointr--;
                        if (r < 0)
                                break;
                        b = &l.obj->u.barrier;
                        if (b->generation > gen0) {
                                /* The trip (or a reset) came first. */
                                r = leave(&l, o, gen0, index);
                        } else {
                                r = timed_out;
                                /* The break did not reach etcd: the record
                                 * stays, so that the daemon breaks the round
                                 * when this process is gone. */
                                if (rb == 0 || (b->broken && b->generation == gen0))
                                        (void)leave(&l, o, gen0, index);
                        }
                        obj_unlock(&l);
                        break;
                }
                if (r < 0)
                        break;
        }
out:
        waiter_done(&w);
        return r;
}

static int bar_break(evd_barrier *barrier, uint32_t what) {
        struct proto_msg req = { .op = OP_CLUSTER_BAR_BREAK }, rep;
        proto_set_u32(&req, TAG_STATE, what);
        return bar_request(barrier, &req, &rep);
}

int cluster_barrier_abort(evd_barrier *barrier) {
        return bar_break(barrier, CLUSTER_BAR_ABORT);
}

int cluster_barrier_reset(evd_barrier *barrier) {
        return bar_break(barrier, CLUSTER_BAR_RESET);
}
