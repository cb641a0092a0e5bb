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
#include "detail.h"
#include "macro.h"
#include "object.h"
#include "proc.h"
#include "shm.h"

/* The daemon writes this file into the runtime directory of a cluster
 * namespace (daemon/cluster.h: CLUSTER_MARK_FILE) and removes it when it
 * serves the directory without --etcd. */
#define CLUSTER_MARK_FILE "evd.cluster"

static int cluster_event_write(evd_event *ev, enum evd_event_state state, const void *value,
                               size_t len) {
        struct proto_msg req = { .op = OP_CLUSTER_EVENT }, rep;
        uint8_t valbuf[EVD_VALUE_MAX];
        proto_set_name(&req, ev->name);
        proto_set_u32(&req, TAG_STATE, (uint32_t)state);
        if (len)
                proto_set_value(&req, value, (uint32_t)len);
        int r = client_request(ev->ctx, &req, &rep, valbuf);
        if (r < 0)
                return r;
        if (rep.status < 0 && rep.value_len)
                return detail_set(rep.status, "%.*s", (int)rep.value_len, (const char *)rep.value);
        return rep.status;
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
 * it sees it set at generation G, copies the value, and asks the daemon to
 * claim set G in etcd (OP_CLUSTER_CLAIM).  The daemon answers once the
 * segment shows the outcome, so a waiter that lost looks again at a state
 * that no longer offers the same set. */

static int claim(evd_event *ev, uint64_t sets) {
        struct proto_msg req = { .op = OP_CLUSTER_CLAIM }, rep;
        uint8_t valbuf[EVD_VALUE_MAX];
        proto_set_name(&req, ev->name);
        proto_set_u64(&req, TAG_SETS, sets);
        int r = client_request(ev->ctx, &req, &rep, valbuf);
        if (r < 0)
                return r;
        if (rep.status < 0 && rep.value_len)
                return detail_set(rep.status, "%.*s", (int)rep.value_len, (const char *)rep.value);
        return rep.status;
}

static int auto_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize, size_t *lenp) {
        int r = wait_check_cancel(ev->ctx);
        if (r < 0)
                return r;
        struct waiter w;
        waiter_init(&w, ev->ctx, ev->name, timeout);
        for (;;) {
                struct locked l;
                r = obj_lock(ev->ctx, ev->index, ev->gen, EVD_TYPE_EVENT, &l);
                if (r < 0)
                        break;
                struct seg_event *e = &l.obj->u.event;
                if (e->state == EVD_STATE_SET) {
                        uint64_t g = e->sets;
                        size_t len = MIN((size_t)e->payload_len, (size_t)EVD_VALUE_MAX);
                        uint8_t value[EVD_VALUE_MAX];
                        memcpy(value, e->payload, len);
                        obj_unlock(&l);
                        r = claim(ev, g);
                        if (r == 0) {
                                if (buf && bufsize) {
                                        size_t n = MIN(len, bufsize);
                                        memcpy(buf, value, n);
                                        if (n < bufsize)
                                                ((char *)buf)[n] = '\0';
                                }
                                if (lenp)
                                        *lenp = len;
                                break;
                        }
                        if (r != -EAGAIN)
                                break;
                        /* Another waiter won: look again (the segment
                         * shows its clear, or a newer set, by now). */
                        r = wait_check_cancel(ev->ctx);
                        if (r < 0)
                                break;
                        if (now_monotonic_usec() >= w.deadline) {
                                r = -ETIMEDOUT;
                                break;
                        }
                        continue;
                }
                struct evd_futex_waitv v;
                fill_waitv(&v, l.obj);
                obj_unlock(&l);
                r = waiter_sleep(&w, l.seg, &v, 1, ev->index);
                if (r < 0)
                        break;
        }
        waiter_done(&w);
        return r;
}

static int cluster_event_wait(evd_event *ev, int64_t timeout, void *buf, size_t bufsize,
                              size_t *lenp) {
        if (ev->kind != EVD_EVENT_AUTO)
                return shm_event_wait(ev, timeout, buf, bufsize, lenp);
        return auto_wait(ev, timeout, buf, bufsize, lenp);
}

/* Waiting for several: auto events among them would be consumed in the
 * segment alone, so they are refused until the claim covers several
 * events (docs/cluster.md). */
static bool any_auto(evd_event **evs, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (evs[i]->kind == EVD_EVENT_AUTO)
                        return true;
        return false;
}

static int cluster_event_wait_any(evd_event **evs, size_t n, int64_t timeout, size_t *indexp,
                                  void *buf, size_t bufsize, size_t *lenp) {
        if (any_auto(evs, n))
                return detail_set(-EOPNOTSUPP, "waiting for several events of a cluster "
                                               "namespace, --auto ones among them, is not "
                                               "supported yet");
        return shm_event_wait_any(evs, n, timeout, indexp, buf, bufsize, lenp);
}

const struct evd_backend cluster_backend = {
        .name = "cluster",

        .ns_open = shm_ns_open,
        .ns_close = shm_ns_close,
        .create = client_create,
        .delete = shm_delete,
        .list = shm_list,
        .show = shm_show,
        .watch_wait = shm_watch_wait,
        .notifier_open = shm_notifier_open,
        .notifier_ack = shm_notifier_ack,
        .notifier_free = shm_notifier_free,

        .event_open = shm_event_open,
        .event_free = shm_event_free,
        .event_set = cluster_event_set,
        .event_clear = cluster_event_clear,
        .event_fail = cluster_event_fail,
        .event_is_set = shm_event_is_set,
        .event_wait = cluster_event_wait,
        .event_wait_any = cluster_event_wait_any,
        .event_wait_all = shm_event_wait_all,

        /* Semaphores, locks, conditions and barriers: the daemon refuses
         * to create them in a cluster namespace (-EOPNOTSUPP) until their
         * etcd side exists (docs/cluster.md, "Next steps"). */
        .sem_open = shm_sem_open,
        .sem_free = shm_sem_free,
        .sem_acquire = shm_sem_acquire,
        .sem_release = shm_sem_release,
        .sem_value = shm_sem_value,

        .lock_open = shm_lock_open,
        .lock_free = shm_lock_free,
        .lock_acquire = shm_lock_acquire,
        .lock_release = shm_lock_release,
        .lock_held = shm_lock_held,

        .cond_open = shm_cond_open,
        .cond_free = shm_cond_free,
        .cond_wait = shm_cond_wait,
        .cond_notify = shm_cond_notify,

        .barrier_open = shm_barrier_open,
        .barrier_free = shm_barrier_free,
        .barrier_wait = shm_barrier_wait,
        .barrier_abort = shm_barrier_abort,
        .barrier_reset = shm_barrier_reset,
        .barrier_parties = shm_barrier_parties,
        .barrier_waiting = shm_barrier_waiting,
        .barrier_broken = shm_barrier_broken,
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
