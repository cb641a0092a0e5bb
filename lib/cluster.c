/* SPDX-License-Identifier: MIT */
/* cluster.c - the cluster namespace's backend: the shared-segment backend,
 * except that writes on events go to the daemon, which makes them in the
 * etcd cluster and mirrors every host's changes into the segment
 * (daemon/cluster.c, docs/cluster.md).  Reads and waits are the segment's,
 * with its futexes and its guarantees for local waiters. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cancel.h"
#include "client.h"
#include "cluster-cond.h"
#include "cluster-sem.h"
#include "cluster-barrier.h"
#include "cluster-shared.h"
#include "detail.h"
#include "proc.h"
#include "shm.h"

/* The daemon writes this file into the runtime directory of a cluster
 * namespace (daemon/cluster.h: CLUSTER_MARK_FILE) and removes it when it
 * serves the directory without --etcd. */
#define CLUSTER_MARK_FILE "evd.cluster"

int cluster_request_raw(evd_ctx *ctx, const char *name, struct proto_msg *req,
                        struct proto_msg *rep, uint8_t *valbuf, bool nointr) {
        proto_set_name(req, name);
        if (nointr)
                wait_nointr++;
        int r = client_request(ctx, req, rep, valbuf);
        if (nointr)
                wait_nointr--;
        return r;
}

/* Whether the daemon answered that it serves the namespace as a local
 * one. */
static bool served_locally(const struct proto_msg *rep) {
        static const char local[] = "this namespace is not a cluster one";
        return rep->status == -EOPNOTSUPP && rep->value_len == sizeof(local) - 1 &&
               !memcmp(rep->value, local, sizeof(local) - 1);
}

int cluster_request(evd_ctx *ctx, const char *name, struct proto_msg *req, struct proto_msg *rep,
                    bool nointr, bool *localp) {
        uint8_t valbuf[EVD_VALUE_MAX];
        int r = cluster_request_raw(ctx, name, req, rep, valbuf, nointr);
        if (localp)
                *localp = r == 0 && served_locally(rep);
        if (r < 0)
                return r;
        if (rep->status < 0 && rep->value_len)
                return detail_set(rep->status, "%.*s", (int)rep->value_len,
                                  (const char *)rep->value);
        return rep->status;
}

bool cluster_record_found(const struct locked *l, const struct sync_obj *o, pid_t pid,
                          uint64_t tag) {
        for (uint32_t i = 0; i < SEG_HOLDER_SLOTS; i++) {
                const struct seg_holder *h = &l->seg->hdr->holders[i];
                if (atomic_load(&h->pid) == (uint32_t)pid &&
                    atomic_load(&h->obj_plus1) == o->index + 1 && h->obj_gen == o->gen &&
                    h->tag == tag)
                        return true;
        }
        return false;
}

int cluster_wait_record(struct waiter *w, const struct sync_obj *o, pid_t pid, uint64_t tag,
                        uint64_t lease, int64_t before, bool present,
                        int (*found)(struct locked *l), bool nointr, const char *what) {
        for (;;) {
                struct locked l;
                wait_nointr += nointr;
                int r = obj_lock(o->ctx, o->index, o->gen, o->type, &l);
                wait_nointr -= nointr;
                if (r < 0)
                        return r;
                /* A hold record of a key whose lease is gone is stale: the
                 * key went with the lease, and another host may hold now;
                 * the record stays until the watch brings the deletion. */
                int64_t now = atomic_load(&l.seg->hdr->cluster_lease_id);
                bool lost = now != (int64_t)lease && (now != before || before == 0);
                if (cluster_record_found(&l, o, pid, tag) == present && !(present && lost)) {
                        if (!found) {
                                obj_unlock(&l);
                                return 0;
                        }
                        return found(&l);
                }
                if (lost) {
                        /* The lease our key had is gone (the host was cut
                         * off from etcd for longer than its TTL): so is
                         * the key, and our place in line. */
                        obj_unlock(&l);
                        return detail_set(-ENOLINK, "this host lost its lease in the etcd cluster "
                                                    "while %s %s",
                                          what, o->name);
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                obj_unlock(&l);
                r = waiter_sleep(w, l.seg, &v, 1, o->index);
                if (r < 0)
                        return r;
        }
}

int64_t cluster_lease_now(evd_ctx *ctx) {
        return atomic_load(&client_seg(ctx)->hdr->cluster_lease_id);
}

int cluster_wait_lease(struct waiter *w, const struct sync_obj *o, int64_t gone) {
        for (;;) {
                struct locked l;
                int r = obj_lock(o->ctx, o->index, o->gen, o->type, &l);
                if (r < 0)
                        return r;
                int64_t lease = atomic_load(&l.seg->hdr->cluster_lease_id);
                if (lease != 0 && lease != gone) {
                        obj_unlock(&l);
                        return 0;
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                obj_unlock(&l);
                /* Nothing wakes us when the lease comes: a nap, the
                 * waiter's deadline lowered to its end for one sleep. */
                uint64_t deadline = w->deadline,
                         nap_end = now_monotonic_usec() + CLUSTER_LEASE_POLL_USEC;
                if (nap_end < deadline)
                        w->deadline = nap_end;
                r = waiter_sleep(w, l.seg, &v, 1, o->index);
                w->deadline = deadline;
                if (r == -ETIMEDOUT && nap_end < deadline)
                        r = 0;
                if (r < 0)
                        return r;
        }
}

/* One request to the daemon about event EV. */
static int event_request(evd_event *ev, struct proto_msg *req) {
        struct proto_msg rep;
        return cluster_request(ev->ctx, ev->name, req, &rep, false, NULL);
}

static int cluster_event_write(evd_event *ev, enum evd_event_state state, const void *value,
                               size_t len) {
        struct proto_msg req = { .op = OP_CLUSTER_EVENT };
        proto_set_u32(&req, TAG_STATE, (uint32_t)state);
        if (len)
                proto_set_value(&req, value, (uint32_t)len);
        return event_request(ev, &req);
}

static int cluster_event_set(evd_event *ev, const void *value, size_t len) {
        return cluster_event_write(ev, EVD_STATE_SET, value, len);
}

static int cluster_event_clear(evd_event *ev) {
        return cluster_event_write(ev, EVD_STATE_CLEAR, NULL, 0);
}

static int cluster_event_fail(evd_event *ev, const char *message) {
        return cluster_event_write(ev, EVD_STATE_FAILED, message, message ? strlen(message) : 0);
}

/* ---- auto events ------------------------------------------------------------
 * A set of an auto event releases exactly one waiter in the whole cluster.
 * A waiter does not consume the set in the segment (as shm_event_wait does):
 * shm_event_wait_claimed has it see the set at generation G, and this asks
 * the daemon to claim set G in etcd (OP_CLUSTER_CLAIM).  The daemon answers
 * once the segment shows the outcome, so a waiter that lost looks again at
 * a state that no longer offers the same set. */
static int claim(evd_event *ev, uint64_t sets) {
        struct proto_msg req = { .op = OP_CLUSTER_CLAIM };
        proto_set_u64(&req, TAG_SETS, sets);
        return event_request(ev, &req);
}

static int cluster_event_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize,
                              size_t *lenp) {
        return shm_event_wait_claimed(ev, timeout, buf, bufsize, lenp, claim);
}

/* Waiting for the first of several: a set auto event among them is
 * claimed as by a single wait, one event at a time. */
static int cluster_event_wait_any(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                                  void *buf, size_t bufsize, size_t *lenp) {
        return shm_event_wait_any_claimed(evs, n, timeout, indexp, buf, bufsize, lenp, claim);
}

/* Semaphores and locks take, give back and wait through the daemon
 * (cluster-sem.c), barriers are decided in etcd (cluster-barrier.c),
 * conditions wait and notify through etcd (cluster-cond.c); their reads
 * are the segment's. */
const struct evd_backend cluster_backend = {
        .name = "cluster",
        SHM_BACKEND_SHARED_OPS,
        .event_set = cluster_event_set,
        .event_clear = cluster_event_clear,
        .event_fail = cluster_event_fail,
        .event_wait = cluster_event_wait,
        .event_wait_any = cluster_event_wait_any,
        .sem_open = cluster_sem_open,
        .sem_acquire = cluster_sem_acquire,
        .sem_release = cluster_sem_release,
        .lock_acquire = cluster_lock_acquire,
        .lock_release = cluster_lock_release,
        .cond_open = cluster_cond_open,
        .cond_wait = cluster_cond_wait,
        .cond_notify = cluster_cond_notify,
        .barrier_open = cluster_barrier_open,
        .barrier_wait = cluster_barrier_wait,
        .barrier_abort = cluster_barrier_abort,
        .barrier_reset = cluster_barrier_reset,
};

const struct evd_backend *cluster_pick_backend(const evd_ctx *ctx, const struct evd_backend *be) {
        if (be != &shm_backend)
                return be; /* a unit test's table */
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", ctx->paths.runtime_dir, CLUSTER_MARK_FILE) >=
            (int)sizeof(path))
                return be;
        return access(path, F_OK) == 0 ? &cluster_backend : be;
}
